#!/usr/bin/env bash
# Your own models (docs/models.md): makes a small TorchScript teacher (trained in Python) and a
# small TorchScript student (random), a JSON Lines file of the polarity data the project
# already fetches (scripts/setup.sh), and two jobs whose task is that file, then runs them:
#   compare.json  mode "compare": record both modules on the file's eval split, analyse
#   distil.json   mode "distil": distil the TorchScript teacher into a KDScope student and
#                 into the TorchScript student (trained in C++ through its parameters)
# Usage: bash samples/own-models/run.sh [--tiny] [OUT_DIR]   (default out/own-models; needs a build)
#   --tiny  400 examples, smaller models, one epoch each, analysis on: the same steps in
#           about half a minute (ctest sample_own_models runs it)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
tiny=0
if [ "${1:-}" = "--tiny" ]; then tiny=1; shift; fi
out="${1:-out/own-models}"
kdscope="${KDSCOPE:-$root/build/release/app/kdscope}"
python=/usr/bin/python3   # Debian's, which has torch
data="${KDSCOPE_DATA_DIR:-$HOME/.cache/kdscope/data}"
corpus="$data/python3-pattern/usr/share/doc/python3-pattern/test/corpora/polarity-en-pang&lee2.csv"
[ -x "$kdscope" ] || { echo "no kdscope at $kdscope: build first (README) or set KDSCOPE" >&2; exit 2; }
# (ctest sets KDSCOPE_SKIP_CODE=77 so that a machine without the data skips, not fails)
[ -f "$corpus" ] || { echo "no polarity data at $corpus: run scripts/setup.sh (it fetches it)" >&2; exit "${KDSCOPE_SKIP_CODE:-2}"; }
mkdir -p "$out/models"
out="$(cd "$out" && pwd)"

# 1. The data as JSON Lines ({"id", "text", "label"}: label "negative" or "positive"; --tiny:
#    the first 200 of each), and a WordPiece vocabulary: the 3,000 most frequent words, then
#    single letters as ##pieces.
"$python" - "$corpus" "$out/models" "$tiny" <<'PY'
import collections, csv, json, string, sys
corpus, out, tiny = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
rows, kept = [], collections.Counter()
with open(corpus, encoding="utf-8-sig", newline="") as f:
    for i, (label, text) in enumerate(csv.reader(f)):
        name = "positive" if label.strip() == "1" else "negative"
        if tiny and kept[name] >= 200:
            continue
        kept[name] += 1
        rows.append({"id": "polarity-%05d" % i, "text": text, "label": name})
with open(out + "/polarity.jsonl", "w", encoding="utf-8") as f:
    for r in rows:
        f.write(json.dumps(r) + "\n")
counts = collections.Counter(w.strip(string.punctuation) for r in rows for w in r["text"].lower().split())
words = [w for w, _ in counts.most_common(3000) if w and w.isalpha()]
vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list(string.punctuation) + \
        list(string.ascii_lowercase) + ["##" + c for c in string.ascii_lowercase] + words
seen, unique = set(), []
for w in vocab:
    if w not in seen:
        seen.add(w); unique.append(w)
with open(out + "/vocab.txt", "w", encoding="utf-8") as f:
    f.write("\n".join(unique) + "\n")
print("polarity.jsonl: %d examples; vocab.txt: %d pieces" % (len(rows), len(unique)))
PY

# 2. The models: a 2-layer teacher trained 2 epochs in Python (note: on every example, so it
#    has seen the job's eval split too: a demonstration, not a measurement), and a random
#    1-layer student.
make="$root/bench/make_bert_torchscript.py"
if [ "$tiny" = 1 ]; then width=32; heads=2; ffn=64; epochs=1; else width=64; heads=4; ffn=128; epochs=2; fi
"$python" - "$out/models" <<'PY'
import json, sys
# The teacher's Python training reads integer labels (0 negative, 1 positive).
with open(sys.argv[1] + "/polarity.jsonl", encoding="utf-8") as f, \
        open(sys.argv[1] + "/train-int.jsonl", "w", encoding="utf-8") as out:
    for line in f:
        r = json.loads(line)
        out.write(json.dumps({"text": r["text"], "label": int(r["label"] == "positive")}) + "\n")
PY
"$python" "$make" "$out/models" teacher --layers 2 --width "$width" --heads "$heads" --ffn "$ffn" --max-length 64 \
  --class-names negative,positive --vocab "$out/models/vocab.txt" \
  --train-jsonl "$out/models/train-int.jsonl" --epochs "$epochs" --length 48
"$python" "$make" "$out/models" student --layers 1 --width 32 --heads 2 --ffn 64 --max-length 64 \
  --class-names negative,positive --vocab "$out/models/vocab.txt" --seed 2

# 3. What KDScope makes of them.
"$kdscope" check-model "$out/models/teacher.pt" --task polarity --length 48

# 4. The jobs; their task is the JSON Lines file (relative paths resolve against the job file).
task='{"name": "polarity-own", "file": "models/polarity.jsonl", "text_field": "text", "label_field": "label",
   "id_field": "id", "max_len": 48}'
cat > "$out/compare.json" <<JSON
{"name": "own-compare", "mode": "compare",
 "tasks": [$task],
 "teacher": {"torchscript": "models/teacher.pt"},
 "students": [{"name": "random-student", "torchscript": "models/student.pt"}],
 "recording": {"attention_examples": 16}}
JSON
cat > "$out/distil.json" <<JSON
{"name": "own-distil", "mode": "distil",
 "tasks": [$task],
 "teacher": {"torchscript": "models/teacher.pt"},
 "students": [
   {"name": "kd", "architecture": {"layers": 1, "heads": 2, "width": 32, "ffn": 64},
    "training": {"epochs": $epochs}, "objective": {"lambda": 0.9, "temperature": 2.0}},
   {"name": "ts-kd", "torchscript": "models/student.pt",
    "training": {"epochs": $epochs, "lr": 0.001}, "objective": {"lambda": 0.9, "temperature": 2.0}}],
 "recording": {"attention_examples": 16}}
JSON

# 5. Run, analyse (on by default) and summarise.
"$kdscope" run "$out/compare.json" --out "$out/compare"
"$kdscope" info "$out/compare/run.h5"
"$kdscope" run "$out/distil.json" --out "$out/distil"
"$kdscope" info "$out/distil/run.h5"
echo "open them in the window: $kdscope $out/distil/run.h5"
