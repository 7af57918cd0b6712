"""A tiny polarity corpus laid out like the fetched Debian package (docs/data.md).

Usage: make_tiny_polarity.py DATA_DIR [--flip F]

160 sentences of 8 words; every third word carries the sentiment. With --flip F a fraction F
of the labels is flipped (seeded), so no model is perfect and accuracies differ between
models. Shared by tests/app/run_and_check.sh and tests/slurm/tiny_study.sh.
"""
import argparse
import os
import random

parser = argparse.ArgumentParser()
parser.add_argument("data_dir")
parser.add_argument("--flip", type=float, default=0.0)
args = parser.parse_args()

d = os.path.join(args.data_dir, "python3-pattern/usr/share/doc/python3-pattern/test/corpora")
os.makedirs(d, exist_ok=True)
rng = random.Random(3)
good = ["good", "great", "fine", "lovely", "superb"]
bad = ["bad", "awful", "dull", "poor", "boring"]
filler = ["the", "film", "was", "a", "plot", "and", "acting"]
with open(os.path.join(d, "polarity-en-pang&lee2.csv"), "w", encoding="utf-8") as out:
    for i in range(160):
        positive = i % 2 == 0
        words = [rng.choice((good if positive else bad) if w % 3 == 1 else filler) for w in range(8)]
        label = positive
        if args.flip > 0:
            label = positive if rng.random() >= args.flip else not positive
        out.write('"%s","%s"\n' % ("1" if label else "-1", " ".join(words)))
