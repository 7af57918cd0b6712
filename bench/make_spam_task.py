#!/usr/bin/env python3
"""Writes a JSON Lines task file of N eval rows (and a small train split) from the spam-assassin
e-mails that set-up fetches, for the own-models bench at sizes the built-in spam task cannot
give (it has 6,046 e-mails; N = 10,000 eval rows need more). Each e-mail's body (headers, HTML
tags and entities removed, white space collapsed) is cut at word boundaries into passages of at
least --min-chars characters (at most --max-chars); rows are taken one passage per e-mail first,
in a seeded shuffle of the e-mails (seed 0), then second passages (so N up to about 5,000
uses only first passages).

Usage: make_spam_task.py DATA_DIR OUT.jsonl N [--train 64] [--min-chars 300] [--max-chars 600]
Fields: id, text, label (ham|spam), split (train|eval)."""
import argparse
import html
import json
import os
import random
import re
import sys

GROUPS = ["easy-ham-1", "easy-ham-2", "hard-ham-1", "spam-1", "spam-2"]


def body(email: str) -> str:
    cut = email.find("\n\n")
    text = email[cut + 2:] if cut >= 0 else email
    text = re.sub(r"<[^>]*>", " ", text)
    text = html.unescape(text)
    return " ".join(text.split())


def passages(text: str, lo: int, hi: int):
    words, cur, out = text.split(" "), [], []
    size = 0
    for w in words:
        cur.append(w)
        size += len(w) + 1
        if size >= hi:
            out.append(" ".join(cur))
            cur, size = [], 0
    if size >= lo:
        out.append(" ".join(cur))
    return [p for p in out if len(p) >= lo]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir")
    ap.add_argument("out")
    ap.add_argument("n", type=int)
    ap.add_argument("--train", type=int, default=64)
    ap.add_argument("--min-chars", type=int, default=300)
    ap.add_argument("--max-chars", type=int, default=600)
    a = ap.parse_args()
    base = os.path.join(a.data_dir, "spam-assassin", "package", "data")
    per_mail = []
    for group in GROUPS:
        d = os.path.join(base, group)
        if not os.path.isdir(d):
            print(f"make_spam_task: missing folder {d} (run scripts/setup.sh)", file=sys.stderr)
            return 2
        label = "spam" if group.startswith("spam") else "ham"
        for name in sorted(os.listdir(d)):
            if not name.endswith(".json"):
                continue
            with open(os.path.join(d, name), encoding="utf-8") as f:
                text = json.load(f)["text"]
            ps = passages(body(text), a.min_chars, a.max_chars)
            if ps:
                per_mail.append((f"{group}/{name[:-5]}", label, ps))
    # A seeded shuffle of the e-mails mixes ham and spam (each folder is one class).
    random.Random(0).shuffle(per_mail)
    rows = []
    depth = 0
    while len(rows) < a.n + a.train:
        added = False
        for key, label, ps in per_mail:
            if depth < len(ps):
                rows.append((f"{key}#{depth}", label, ps[depth]))
                added = True
                if len(rows) == a.n + a.train:
                    break
        if not added:
            print(f"make_spam_task: only {len(rows)} passages, {a.n + a.train} asked", file=sys.stderr)
            return 2
        depth += 1
    # Every k-th row is train, so both splits hold both classes.
    step = max(1, (a.n + a.train) // max(1, a.train))
    with open(a.out, "w", encoding="utf-8") as f:
        trains = 0
        for i, (rid, label, text) in enumerate(rows):
            split = "train" if (i % step == 0 and trains < a.train) else "eval"
            trains += split == "train"
            f.write(json.dumps({"id": rid, "text": text, "label": label, "split": split}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
