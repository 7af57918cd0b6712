#!/usr/bin/env python3
"""Makes a BERT-like sequence classifier as TorchScript, in Hugging Face's layout, without
transformers (Debian packages none): post-LayerNorm blocks, word + position + token-type
embeddings, pooler, classifier; forward(input_ids, attention_mask, token_type_ids,
position_ids, head_mask) returns (logits, hidden_states tuple of layers + 1, attentions tuple
of layers), what BertForSequenceClassification gives when traced with torchscript=True,
output_hidden_states=True, output_attentions=True. Writes NAME.pt, NAME.json (the manifest,
docs/models.md) and, unless it exists, the WordPiece vocabulary.

Usage: /usr/bin/python3 bench/make_bert_torchscript.py OUT_DIR NAME [options]
  --layers 12 --width 768 --heads 12 --ffn 3072 --classes 2 --max-length 512 --seed 1
  --vocab FILE        a vocab.txt to use (default: OUT_DIR/vocab.txt, made if missing:
                      the special tokens, a-z, ##a-##z, digits and punctuation, padded with
                      [unusedK] to --vocab-size, so every word splits into letters)
  --vocab-size 30522
  --init-std 0.02     the standard deviation of the random initialisation (tests use a larger
                      one, so that logits and the token-type embeddings matter)
  --no-position-ids   trace forward(input_ids, attention_mask, token_type_ids, head_mask)
                      (positions made inside the module, 0..L-1) instead of Hugging Face's
                      five arguments; the manifest lists the four inputs
  --train-jsonl FILE  train the model first (AdamW, cross-entropy) on {"text", "label"} lines
  --epochs 1 --lr 5e-4 --batch 32 --length 64
Randomly initialised (N(0, --init-std), 0.02 as BERT's initialiser) unless --train-jsonl is given.
"""

import argparse
import json
import math
import os
import random
import string

import torch
import torch.nn as nn
import torch.nn.functional as F

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


class SelfAttention(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.head_width = width // heads
        self.query = nn.Linear(width, width)
        self.key = nn.Linear(width, width)
        self.value = nn.Linear(width, width)
        self.dense = nn.Linear(width, width)
        self.norm = nn.LayerNorm(width, eps=1e-12)

    def split(self, x):
        b, n, _ = x.shape
        return x.view(b, n, self.heads, self.head_width).permute(0, 2, 1, 3)

    def forward(self, x, extended_mask, layer_head_mask):
        q, k, v = self.split(self.query(x)), self.split(self.key(x)), self.split(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_width) + extended_mask
        probs = torch.softmax(scores, dim=-1) * layer_head_mask
        context = torch.matmul(probs, v).permute(0, 2, 1, 3).contiguous()
        context = context.view(context.shape[0], context.shape[1], -1)
        return self.norm(self.dense(context) + x), probs


class Layer(nn.Module):
    def __init__(self, width, heads, ffn):
        super().__init__()
        self.attention = SelfAttention(width, heads)
        self.intermediate = nn.Linear(width, ffn)
        self.output = nn.Linear(ffn, width)
        self.norm = nn.LayerNorm(width, eps=1e-12)

    def forward(self, x, extended_mask, layer_head_mask):
        a, probs = self.attention(x, extended_mask, layer_head_mask)
        return self.norm(self.output(F.gelu(self.intermediate(a))) + a), probs


class Bert(nn.Module):
    def __init__(self, vocab, layers, width, heads, ffn, classes, max_length, init_std=0.02):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, width)
        self.position_embeddings = nn.Embedding(max_length, width)
        self.token_type_embeddings = nn.Embedding(2, width)
        self.embedding_norm = nn.LayerNorm(width, eps=1e-12)
        self.layers = nn.ModuleList([Layer(width, heads, ffn) for _ in range(layers)])
        self.pooler = nn.Linear(width, width)
        self.classifier = nn.Linear(width, classes)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=init_std)
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, input_ids, attention_mask, token_type_ids, position_ids, head_mask):
        x = self.word_embeddings(input_ids) + self.position_embeddings(position_ids) + \
            self.token_type_embeddings(token_type_ids)
        x = self.embedding_norm(x)
        extended = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        head_mask = head_mask.unsqueeze(1).unsqueeze(-1).unsqueeze(-1).to(x.dtype)
        hidden = (x,)
        attentions = ()
        for i, layer in enumerate(self.layers):
            x, probs = layer(x, extended, head_mask[i])
            hidden = hidden + (x,)
            attentions = attentions + (probs,)
        logits = self.classifier(torch.tanh(self.pooler(x[:, 0])))
        return logits, hidden, attentions


class WithoutPositionIds(nn.Module):
    """The same model taking (input_ids, attention_mask, token_type_ids, head_mask): the
    positions 0..L-1 are made inside, as a module traced without position_ids does."""

    def __init__(self, bert):
        super().__init__()
        self.bert = bert

    def forward(self, input_ids, attention_mask, token_type_ids, head_mask):
        # cumsum of ones keeps the length free in the trace (no Python int is recorded).
        position_ids = torch.cumsum(torch.ones_like(input_ids), dim=1) - 1
        return self.bert(input_ids, attention_mask, token_type_ids, position_ids, head_mask)


def default_vocab(size):
    pieces = list(string.ascii_lowercase) + ["##" + c for c in string.ascii_lowercase] + \
        list(string.digits) + ["##" + c for c in string.digits] + list(string.punctuation)
    words = SPECIALS + pieces
    words += ["[unused%d]" % i for i in range(max(0, size - len(words)))]
    return words


def wordpiece(text, vocab_index, length):
    """A small WordPiece (lower-cased, punctuation split, greedy longest match) for training
    the sample teacher; KDScope's own tokenizer (core/data/wordpiece.h) is the reference."""
    ids = [vocab_index["[CLS]"]]
    for token in text.lower().replace("\n", " ").split():
        words, current = [], ""
        for ch in token:
            if ch in string.punctuation:
                if current:
                    words.append(current)
                words.append(ch)
                current = ""
            else:
                current += ch
        if current:
            words.append(current)
        for word in words:
            start, pieces = 0, []
            while start < len(word):
                end, found = len(word), None
                while start < end:
                    piece = ("##" if start > 0 else "") + word[start:end]
                    if piece in vocab_index:
                        found = piece
                        break
                    end -= 1
                if found is None:
                    pieces = ["[UNK]"]
                    break
                pieces.append(found)
                start = end
            ids += [vocab_index[p] for p in pieces]
    ids = ids[:length - 1] + [vocab_index["[SEP]"]]
    return ids + [0] * (length - len(ids))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("name")
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--width", type=int, default=768)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--ffn", type=int, default=3072)
    ap.add_argument("--classes", type=int, default=2)
    ap.add_argument("--class-names", default="")
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--vocab", default="")
    ap.add_argument("--vocab-size", type=int, default=30522)
    ap.add_argument("--train-jsonl", default="")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--length", type=int, default=64)
    ap.add_argument("--no-position-ids", action="store_true")
    ap.add_argument("--init-std", type=float, default=0.02)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.manual_seed(a.seed)
    vocab_path = a.vocab or os.path.join(a.out, "vocab.txt")
    if not os.path.exists(vocab_path):
        with open(vocab_path, "w", encoding="utf-8") as f:
            f.write("\n".join(default_vocab(a.vocab_size)) + "\n")
    with open(vocab_path, encoding="utf-8") as f:
        vocab = [line.rstrip("\n") for line in f]
    model = Bert(len(vocab), a.layers, a.width, a.heads, a.ffn, a.classes, a.max_length, a.init_std)

    if a.train_jsonl:
        index = {w: i for i, w in enumerate(vocab)}
        rows = []
        with open(a.train_jsonl, encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                rows.append((wordpiece(r["text"], index, a.length), int(r["label"])))
        opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.01)
        rng = random.Random(a.seed)
        model.train()
        for epoch in range(a.epochs):
            rng.shuffle(rows)
            total = 0.0
            for b in range(0, len(rows), a.batch):
                ids = torch.tensor([r[0] for r in rows[b:b + a.batch]])
                labels = torch.tensor([r[1] for r in rows[b:b + a.batch]])
                pos = torch.arange(ids.shape[1]).unsqueeze(0).expand_as(ids)
                logits = model(ids, (ids != 0).long(), torch.zeros_like(ids), pos,
                               torch.ones(a.layers, a.heads))[0]
                loss = F.cross_entropy(logits, labels)
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item() * len(labels)
            print("%s: epoch %d, mean train loss %.4f" % (a.name, epoch + 1, total / len(rows)))
    model.eval()
    ids = torch.randint(5, len(vocab), (2, 8))
    types = torch.tensor([[0, 0, 0, 0, 1, 1, 1, 1], [0, 0, 0, 1, 1, 1, 0, 0]])
    inputs = ["input_ids", "attention_mask", "token_type_ids", "position_ids", "head_mask"]
    if a.no_position_ids:
        model = WithoutPositionIds(model).eval()
        example = (ids, torch.ones_like(ids), types, torch.ones(a.layers, a.heads))
        inputs.remove("position_ids")
        classifier = "bert.classifier"
    else:
        example = (ids, torch.ones_like(ids), types,
                   torch.arange(8).unsqueeze(0).expand(2, 8).contiguous(), torch.ones(a.layers, a.heads))
        classifier = "classifier"
    with torch.no_grad():
        traced = torch.jit.trace(model, example)
    traced.save(os.path.join(a.out, a.name + ".pt"))
    names = a.class_names.split(",") if a.class_names else ["class%d" % k for k in range(a.classes)]
    manifest = {
        "manifest_version": 1,
        "inputs": inputs,
        "outputs": {"logits": 0, "hidden_states": 1, "attentions": 2},
        "tokenizer": {"type": "wordpiece", "vocab": os.path.relpath(vocab_path, a.out), "lower_case": True},
        "class_names": names,
        "sizes": {"layers": a.layers, "heads": a.heads, "width": a.width, "max_length": a.max_length},
        "classifier": {"weight": classifier + ".weight", "bias": classifier + ".bias"},
    }
    with open(os.path.join(a.out, a.name + ".json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    print("%s: %d parameters -> %s" % (a.name, sum(p.numel() for p in model.parameters()),
                                        os.path.join(a.out, a.name + ".pt")))


if __name__ == "__main__":
    main()
