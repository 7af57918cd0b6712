#!/usr/bin/env python3
"""Issue #13's "Done when", end to end (suite OwnPairsEndToEnd, tests/core/test_own_pairs.cpp):
a traced BERT-family teacher and student and a CSV of sentence pairs, run by one job file.

  own_pairs.py make OUT DATA_DIR
      OUT/pairs.csv   sentence pairs made from the hedge set the project fetches
                      ($KDSCOPE_DATA_DIR/own-data/hedge.jsonl, scripts/setup.sh): two
                      consecutive sentences of one split, label "agree" when both have the
                      same certainty, else "differ"; columns id, premise, hypothesis,
                      relation, split
      OUT/models/     vocab.txt (special tokens, letters as pieces, the pairs' frequent words),
                      teacher.pt / student.pt and their manifests, made by
                      bench/make_bert_torchscript.py --no-position-ids: forward(input_ids,
                      attention_mask, token_type_ids, head_mask) returns (logits, hidden
                      states, attentions) as Hugging Face's traced models do
      OUT/compare.json, OUT/distil.json   the job files (one each)
  own_pairs.py oracle RUN_H5 OUT
      PyTorch is the oracle: the pairs of the run file's eval split (by eval/source_index,
      the row of pairs.csv) are tokenized here, independently of KDScope, with BERT's
      basic tokenizer and WordPiece (written below from BERT's tokenization.py), as
      [CLS] a [SEP] b [SEP] with token types 0 then 1; the teacher module runs on them in
      Python; its logits must equal the recorded eval/logits within 1e-4, and the run file's
      eval/token_counts must equal the attention masks' sums, and its eval/tokens (the kept
      examples) and vocab the ids and vocab.txt used here. Prints a JSON summary; exit 1
      on any mismatch.
"""
import collections
import csv
import json
import os
import string
import subprocess
import sys
import unicodedata

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.join(HERE, "..", "..", "bench", "make_bert_torchscript.py")
PAIRS = 60          # per split: train and dev
MAX_LEN = 48
# Float32 forwards of the same module in C++ and in Python may sum in another order (another
# batch size, other kernels): logits of order 1 agree to about 1e-6; 1e-4 leaves room.
TOLERANCE = 1e-4


def make(out, data_dir):
    hedge = os.path.join(data_dir, "own-data", "hedge.jsonl")
    by_split = collections.defaultdict(list)
    with open(hedge, encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            by_split[r["split"]].append(r)
    rows = []
    for split in ("train", "dev"):
        sentences = by_split[split]
        for k in range(PAIRS):
            a, b = sentences[2 * k], sentences[2 * k + 1]
            rows.append({"id": "%s-%s" % (a["id"], b["id"]), "premise": a["sentence"], "hypothesis": b["sentence"],
                         "relation": "agree" if a["certainty"] == b["certainty"] else "differ", "split": split})
    os.makedirs(os.path.join(out, "models"), exist_ok=True)
    with open(os.path.join(out, "pairs.csv"), "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["id", "premise", "hypothesis", "relation", "split"])
        w.writeheader()
        w.writerows(rows)
    counts = collections.Counter(w.strip(string.punctuation) for r in rows
                                 for w in (r["premise"] + " " + r["hypothesis"]).lower().split())
    words = [w for w, _ in counts.most_common(300) if w and w.isalpha()]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list(string.punctuation) + list(string.ascii_lowercase) + \
        ["##" + c for c in string.ascii_lowercase] + list(string.digits) + ["##" + c for c in string.digits] + words
    unique = list(dict.fromkeys(vocab))
    with open(os.path.join(out, "models", "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(unique) + "\n")
    common = [sys.executable, BENCH, os.path.join(out, "models")]
    shared = ["--class-names", "agree,differ", "--vocab", os.path.join(out, "models", "vocab.txt"),
              "--max-length", "64", "--no-position-ids", "--init-std", "0.3"]
    subprocess.run(common + ["teacher", "--layers", "2", "--width", "32", "--heads", "4", "--ffn", "64",
                             "--seed", "3"] + shared, check=True)
    subprocess.run(common + ["student", "--layers", "1", "--width", "16", "--heads", "2", "--ffn", "32",
                             "--seed", "4"] + shared, check=True)
    task = {"name": "hedge-pairs", "file": "pairs.csv", "text_field": "premise", "text_pair_field": "hypothesis",
            "label_field": "relation", "id_field": "id", "split_field": "split", "max_len": MAX_LEN}
    recording = {"attention_examples": 8, "token_hidden_examples": 4}
    compare = {"name": "own-pairs-compare", "mode": "compare", "seed": 5, "tasks": [task],
               "teacher": {"torchscript": "models/teacher.pt"},
               "students": [{"name": "student", "torchscript": "models/student.pt"}],
               "recording": recording}
    distil = {"name": "own-pairs-distil", "mode": "distil", "seed": 5, "tasks": [task],
              "teacher": {"torchscript": "models/teacher.pt"},
              "students": [{"name": "kd", "architecture": {"layers": 1, "heads": 2, "width": 16, "ffn": 32},
                            "training": {"epochs": 1, "batch_size": 16},
                            "objective": {"lambda": 0.9, "temperature": 2.0}},
                           {"name": "ts-kd", "torchscript": "models/student.pt",
                            "training": {"epochs": 1, "batch_size": 16, "lr": 0.001},
                            "objective": {"lambda": 0.9, "temperature": 2.0}}],
              "recording": recording}
    for name, job in (("compare.json", compare), ("distil.json", distil)):
        with open(os.path.join(out, name), "w", encoding="utf-8") as f:
            json.dump(job, f, indent=1)
    print("pairs.csv: %d pairs (%s); vocab.txt: %d pieces" %
          (len(rows), dict(collections.Counter(r["relation"] for r in rows)), len(unique)))


# ---- BERT's tokenization (google-research/bert tokenization.py, uncased), independently ----

def is_whitespace(c):
    return c in " \t\n\r" or unicodedata.category(c) == "Zs"


def is_control(c):
    return c not in "\t\n\r" and unicodedata.category(c).startswith("C")


def is_punctuation(c):
    cp = ord(c)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(c).startswith("P")


def is_chinese(cp):
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF or 0x2A700 <= cp <= 0x2B73F
            or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF or 0xF900 <= cp <= 0xFAFF
            or 0x2F800 <= cp <= 0x2FA1F)


def basic_tokens(text):
    cleaned = []
    for c in text:
        cp = ord(c)
        if cp == 0 or cp == 0xFFFD or is_control(c):
            continue
        cleaned.append(" " if is_whitespace(c) else (" %s " % c if is_chinese(cp) else c))
    out = []
    for token in "".join(cleaned).split():
        token = "".join(c for c in unicodedata.normalize("NFD", token.lower()) if unicodedata.category(c) != "Mn")
        current = ""
        for c in token:
            if is_punctuation(c):
                if current:
                    out.append(current)
                out.append(c)
                current = ""
            else:
                current += c
        if current:
            out.append(current)
    return out


def wordpiece_ids(text, index):
    ids = []
    for word in basic_tokens(text):
        if len(word) > 100:
            ids.append(index["[UNK]"])
            continue
        start, pieces = 0, []
        while start < len(word):
            end, found = len(word), None
            while start < end:
                piece = ("##" if start > 0 else "") + word[start:end]
                if piece in index:
                    found = piece
                    break
                end -= 1
            if found is None:
                pieces = ["[UNK]"]
                break
            pieces.append(found)
            start = end
        ids += [index[p] for p in pieces]
    return ids


def encode_pair(a, b, index, length):
    ta, tb = wordpiece_ids(a, index), wordpiece_ids(b, index)
    while len(ta) + len(tb) > length - 3:  # BERT's _truncate_seq_pair
        (ta if len(ta) > len(tb) else tb).pop()
    ids = [index["[CLS]"]] + ta + [index["[SEP]"]] + tb + [index["[SEP]"]]
    types = [0] * (len(ta) + 2) + [1] * (len(tb) + 1)
    pad = length - len(ids)
    return ids + [0] * pad, types + [0] * pad, [1] * len(ids) + [0] * pad


def oracle(run_path, out):
    import h5py
    import numpy as np
    import torch
    with open(os.path.join(out, "pairs.csv"), encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    with open(os.path.join(out, "models", "vocab.txt"), encoding="utf-8") as f:
        index = {w.rstrip("\n"): i for i, w in enumerate(f)}
    task = "/tasks/hedge-pairs"
    with h5py.File(run_path, "r") as h:
        source = h[task + "/eval/source_index"][()]
        texts = [t.decode() if isinstance(t, bytes) else t for t in h[task + "/eval/text"][()]]
        recorded = h[task + "/models/teacher/eval/logits"][()]
        counts = h[task + "/models/teacher/eval/token_counts"][()]
        student_counts = h[task + "/models/student/eval/token_counts"][()] if "student" in h[task + "/models"] else None
        kdscope_tokens = h[task + "/eval/tokens"][()]
        attention = h[task + "/models/teacher/eval/attention"][()].astype(np.float64)  # [n_att, Lyr, H, L, L]
        entropy = h[task + "/analysis/teacher/attention_entropy"][()]                   # [Lyr, H]
        # The module's own tokens of the kept examples and its vocabulary (what the window
        # labels the teacher's attention maps with).
        own_tokens = h[task + "/models/teacher/eval/tokens"][()]
        own_vocab = [w.decode() if isinstance(w, bytes) else w for w in h[task + "/models/teacher/vocab"][()]]
    pairs = [rows[int(i)] for i in source]
    # The run file's texts are "a\nb": the rows source_index names are the pairs it recorded.
    text_match = all(t == p["premise"] + "\n" + p["hypothesis"] for t, p in zip(texts, pairs))
    enc = [encode_pair(p["premise"], p["hypothesis"], index, MAX_LEN) for p in pairs]
    ids = torch.tensor([e[0] for e in enc])
    types = torch.tensor([e[1] for e in enc])
    mask = torch.tensor([e[2] for e in enc])
    model = torch.jit.load(os.path.join(out, "models", "teacher.pt"))
    manifest = json.load(open(os.path.join(out, "models", "teacher.json")))
    sizes = manifest["sizes"]
    head_mask = torch.ones(sizes["layers"], sizes["heads"])
    with torch.no_grad():
        logits = model(ids, mask, types, head_mask)[0].numpy()
        without_types = model(ids, mask, torch.zeros_like(types), head_mask)[0].numpy()
    worst = float(np.abs(logits - recorded).max())

    # The attention entropy per head (docs/analyses.md): the mean over the recorded examples'
    # real query rows of -sum p log p over the real keys (rows renormalised), where "real"
    # means the module's own tokens (its attention mask), not KDScope's word tokens.
    def entropy_over(lengths):
        total = np.zeros(attention.shape[1:3])
        rows = 0
        for e, n in enumerate(lengths):
            p = attention[e, :, :, :n, :n]
            p = p / np.maximum(p.sum(-1, keepdims=True), 1e-300)
            total += -(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)).sum(-1).sum(-1)
            rows += n
        return total / rows
    n_att = attention.shape[0]
    own_lengths = mask.sum(1).numpy()[:n_att]
    word_lengths = (kdscope_tokens[:n_att] != 0).sum(1)
    entropy_error = float(np.abs(entropy_over(own_lengths) - entropy).max())
    words = sorted(index, key=index.get)
    first_pieces = [words[i] for i in ids[0].tolist()[:int(mask[0].sum())]]
    entropy_by_word_tokens = float(np.abs(entropy_over(word_lengths) - entropy).max())
    types_matter = float(np.abs(without_types - recorded).max())
    summary = {
        "eval_examples": len(pairs),
        "texts_match": text_match,
        "max_abs_difference": worst,
        "max_abs_difference_without_token_types": types_matter,
        "logit_spread": float(logits[:, 0].max() - logits[:, 0].min()),
        "rows_with_type_1": int((types.sum(1) > 0).sum()),
        "truncated_pairs": int((mask.sum(1) == MAX_LEN).sum()),
        "token_counts_match": bool((counts == mask.sum(1).numpy()).all()),
        "student_token_counts_match": None if student_counts is None else bool((student_counts == mask.sum(1).numpy()).all()),
        "attention_examples": int(n_att),
        "attention_examples_where_lengths_differ": int((own_lengths != word_lengths).sum()),
        "entropy_max_abs_difference": entropy_error,
        "entropy_difference_by_kdscope_tokens": entropy_by_word_tokens,
        "own_tokens_rows": int(own_tokens.shape[0]),
        "own_tokens_match": bool(own_tokens.shape == (n_att, MAX_LEN) and (own_tokens == ids[:n_att].numpy()).all()),
        "own_vocab_match": own_vocab == words,
        "first_example_pieces": first_pieces,
    }
    print(json.dumps(summary))
    ok = (text_match and worst < TOLERANCE and types_matter > 1e-2 and summary["logit_spread"] > 1e-2
          and summary["rows_with_type_1"] == len(pairs) and summary["token_counts_match"]
          and summary["student_token_counts_match"] in (None, True)
          # float32 maps summed in double in both: far below 1e-5 nats
          and entropy_error < 1e-5 and summary["attention_examples_where_lengths_differ"] > 0
          and entropy_by_word_tokens > 1e-3 and summary["own_tokens_match"] and summary["own_vocab_match"])
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "make":
        make(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "oracle":
        sys.exit(oracle(sys.argv[2], sys.argv[3]))
    else:
        sys.exit(__doc__)
