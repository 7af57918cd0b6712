#!/usr/bin/env bash
# The own-models bench (bench/README.md, "Your own models: BERT-base compare"): a randomly
# initialised BERT-base-shaped teacher (12 layers, width 768, 12 heads, FFN 3072) and a
# 6-layer student as TorchScript (bench/make_bert_torchscript.py), compared (mode "compare",
# no training, no analysis) on N eval examples of the spam task at 128 tokens. Prints the wall
# time, the peak resident memory (GNU time's maximum RSS) and the run file's size.
# Usage: bench/run-own-models-bench.sh [N ...]   (default 1000; build dir: $BUILD or build/release)
# SOURCE=file: instead of the built-in spam task, a JSON Lines task file of N eval rows and 64
# train rows cut from the same e-mails (bench/make_spam_task.py), for N above spam's 6,046.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
kdscope="${BUILD:-$root/build/release}/app/kdscope"
work="${WORK:-/tmp/kdscope-own-models-bench}"
mkdir -p "$work"
if [ ! -f "$work/teacher.pt" ]; then
  /usr/bin/python3 "$root/bench/make_bert_torchscript.py" "$work" teacher --layers 12 --class-names ham,spam
fi
if [ ! -f "$work/student.pt" ]; then
  /usr/bin/python3 "$root/bench/make_bert_torchscript.py" "$work" student --layers 6 --class-names ham,spam --seed 2
fi
for n in "${@:-1000}"; do
  if [ "${SOURCE:-builtin}" = file ]; then
    /usr/bin/python3 "$root/bench/make_spam_task.py" "${KDSCOPE_DATA_DIR:-$HOME/.cache/kdscope/data}" \
      "$work/spam-$n.jsonl" "$n"
    task="{\"name\": \"spam-file\", \"file\": \"spam-$n.jsonl\", \"id_field\": \"id\", \"split_field\": \"split\", \"max_len\": 128}"
  else
    # eval_fraction 0.5 of 2N examples: N eval examples (spam has 6,046).
    task="{\"name\": \"spam\", \"max_len\": 128, \"max_examples\": $((2 * n)), \"eval_fraction\": 0.5}"
  fi
  cat > "$work/compare-$n.json" <<JSON
{"name": "bench-$n", "mode": "compare",
 "tasks": [$task],
 "teacher": {"torchscript": "teacher.pt"},
 "students": [{"name": "student", "torchscript": "student.pt"}],
 "recording": {"attention_examples": 16, "example_records": false, "memory_budget_mb": 1024},
 "analyze": false}
JSON
  rm -rf "$work/out-$n"
  /usr/bin/time -f "%e s wall, %M KiB max RSS" -o "$work/time-$n.txt" \
    "$kdscope" run "$work/compare-$n.json" --out "$work/out-$n" > "$work/log-$n.txt" 2>&1
  size=$(stat -c %s "$work/out-$n/run.h5")
  echo "N=$n: $(cat "$work/time-$n.txt"), run file $size bytes"
done
