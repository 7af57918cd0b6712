#!/usr/bin/env bash
# Your own models (docs/models.md): makes a small TorchScript teacher (trained in Python) and a
# small TorchScript student (random), a JSON Lines copy of the polarity data the project
# already fetches (scripts/setup.sh), and two jobs, then runs them:
#   compare.json  mode "compare": record both modules on polarity's eval split, analyse
#   distil.json   mode "distil": distil the TorchScript teacher into a KDScope student and
#                 into the TorchScript student (trained in C++ through its parameters)
# Usage: bash samples/own-models/run.sh [OUT_DIR]   (default out/own-models; needs a build)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-out/own-models}"
kdscope="${KDSCOPE:-$root/build/release/app/kdscope}"
python=/usr/bin/python3   # Debian's, which has torch
data="${KDSCOPE_DATA_DIR:-$HOME/.cache/kdscope/data}"
corpus="$data/python3-pattern/usr/share/doc/python3-pattern/test/corpora/polarity-en-pang&lee2.csv"
[ -x "$kdscope" ] || { echo "no kdscope at $kdscope: build first (README) or set KDSCOPE" >&2; exit 2; }
[ -f "$corpus" ] || { echo "no polarity data at $corpus: run scripts/setup.sh (it fetches it)" >&2; exit 2; }
mkdir -p "$out/models"
out="$(cd "$out" && pwd)"

# 1. The data as JSON Lines ({"text", "label"}: 0 negative, 1 positive), and a WordPiece
#    vocabulary: the 3,000 most frequent words, then single letters as ##pieces.
"$python" - "$corpus" "$out/models" <<'PY'
import collections, csv, json, string, sys
corpus, out = sys.argv[1], sys.argv[2]
rows = []
with open(corpus, encoding="utf-8-sig", newline="") as f:
    for label, text in csv.reader(f):
        rows.append({"text": text, "label": 1 if label.strip() == "1" else 0})
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
"$python" "$make" "$out/models" teacher --layers 2 --width 64 --heads 4 --ffn 128 --max-length 64 \
  --class-names negative,positive --vocab "$out/models/vocab.txt" \
  --train-jsonl "$out/models/polarity.jsonl" --epochs 2 --length 48
"$python" "$make" "$out/models" student --layers 1 --width 32 --heads 2 --ffn 64 --max-length 64 \
  --class-names negative,positive --vocab "$out/models/vocab.txt" --seed 2

# 3. What KDScope makes of them.
"$kdscope" check-model "$out/models/teacher.pt" --task polarity --length 48

# 4. The jobs (task "polarity", built in; relative paths resolve against the job file).
cat > "$out/compare.json" <<'JSON'
{"name": "own-compare", "mode": "compare",
 "tasks": [{"name": "polarity", "max_len": 48}],
 "teacher": {"torchscript": "models/teacher.pt"},
 "students": [{"name": "random-student", "torchscript": "models/student.pt"}],
 "recording": {"attention_examples": 16}}
JSON
cat > "$out/distil.json" <<'JSON'
{"name": "own-distil", "mode": "distil",
 "tasks": [{"name": "polarity", "max_len": 48}],
 "teacher": {"torchscript": "models/teacher.pt"},
 "students": [
   {"name": "kd", "architecture": {"layers": 1, "heads": 2, "width": 32, "ffn": 64},
    "training": {"epochs": 2}, "objective": {"lambda": 0.9, "temperature": 2.0}},
   {"name": "ts-kd", "torchscript": "models/student.pt",
    "training": {"epochs": 2, "lr": 0.001}, "objective": {"lambda": 0.9, "temperature": 2.0}}],
 "recording": {"attention_examples": 16}}
JSON

# 5. Run, analyse (on by default) and summarise.
"$kdscope" run "$out/compare.json" --out "$out/compare"
"$kdscope" info "$out/compare/run.h5"
"$kdscope" run "$out/distil.json" --out "$out/distil"
"$kdscope" info "$out/distil/run.h5"
echo "open them in the window: $kdscope $out/distil/run.h5"
