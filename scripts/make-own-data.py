#!/usr/bin/python3
"""Writes the "your own data" sample file into the data cache, from a set fetch-data.sh
already fetched: the CoNLL-2010 hedge sentences of python3-pattern (docs/data.md) as JSON
Lines, the shape a user's own file would have:

    {"id": "hedge-0001", "sentence": "...", "certainty": "certain", "split": "train"}

every fifth sentence (ids 5, 10, ...) with "split": "dev". samples/own-data/hedge-jsonl.json
reads it ("file": "{data_dir}/own-data/hedge.jsonl").

    make-own-data.py DATA_DIR

Idempotent: an existing DATA_DIR/own-data/.done marker skips the work. Standard library only.
"""
import csv
import json
import os
import sys

SOURCE = "python3-pattern/usr/share/doc/python3-pattern/test/corpora/uncertainty-conll2010.csv"


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    data = sys.argv[1]
    out_dir = os.path.join(data, "own-data")
    target = os.path.join(out_dir, "hedge.jsonl")
    marker = os.path.join(out_dir, ".done")
    if os.path.exists(marker) and os.path.exists(target):
        print(f"own-data: {target} already there (skipped)")
        return 0
    source = os.path.join(data, SOURCE)
    if not os.path.exists(source):
        print(f"own-data: {source} is missing: run scripts/fetch-data.sh first", file=sys.stderr)
        return 1
    os.makedirs(out_dir, exist_ok=True)
    rows = 0
    dev = 0
    tmp = target + ".part"
    # utf-8-sig drops the byte order mark; pattern's own test reads "certain = int(label) > 0".
    with open(source, encoding="utf-8-sig", newline="") as f, open(tmp, "w", encoding="utf-8") as out:
        for record in csv.reader(f):
            if len(record) != 2 or record[0] not in ("1", "-1") or not record[1].strip():
                continue
            rows += 1
            split = "dev" if rows % 5 == 0 else "train"
            dev += split == "dev"
            out.write(json.dumps({"id": f"hedge-{rows:04d}", "sentence": record[1].strip(),
                                  "certainty": "certain" if record[0] == "1" else "uncertain",
                                  "split": split}, ensure_ascii=False) + "\n")
    os.replace(tmp, target)
    with open(marker, "w") as f:
        f.write("made from " + SOURCE + "\n")
    print(f"own-data: wrote {target} ({rows} sentences, {dev} dev)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
