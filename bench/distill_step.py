#!/usr/bin/python3
"""PyTorch twin of bench/bench_distill_step.cpp and bench/bench_step.cpp: the same models
(pre-LayerNorm transformer encoder, [CLS] classifier), the same batch, objective and
optimiser, so the C++/Python ratio of distillation-step throughput is measured side by side.

    /usr/bin/python3 bench/distill_step.py --size 0 --threads 1 [--seconds 2]
prints one JSON line: {"size": 0, "threads": 1, "examples_per_s": ...} (bench_distill_step's
two sizes: batch 32, 40 tokens, 10 of them padding, lambda 0.7, T 4, dropout 0.1);

    /usr/bin/python3 bench/distill_step.py --teacher 4,256,4,1024 --student 2,128,2,512 \
        --len 64 --batch 32 --steps 60 [--warmup 5] [--threads N] [--precision fp32|bf16]
        [--profile FILE.json]
takes bench_step's arguments (layers,width,heads,ffn; half the batch padded past len/2;
lambda 0.5, T 2, no dropout) and prints one line ending `examples/s=N`, as bench_step does.
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

VOCAB, LEN, BATCH, CLASSES = 8000, 40, 32, 2
SIZES = [(2, 4, 64, 128, 1, 2, 32, 64), (4, 4, 128, 256, 2, 2, 64, 128)]


class SelfAttention(nn.Module):
    def __init__(self, width, heads, dropout):
        super().__init__()
        self.heads, self.head_dim = heads, width // heads
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, key_mask):
        b, n, _ = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)
        scores = scores.masked_fill(~key_mask.view(b, 1, 1, n), float("-inf"))
        probs = torch.softmax(scores, dim=-1)
        ctx = (self.dropout(probs) @ v).transpose(1, 2).reshape(b, n, -1)
        return self.out(ctx), probs


class Block(nn.Module):
    def __init__(self, width, heads, ffn, dropout):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.attention = SelfAttention(width, heads, dropout)
        self.ffn_in, self.ffn_out = nn.Linear(width, ffn), nn.Linear(ffn, width)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, key_mask):
        a, probs = self.attention(self.norm1(x), key_mask)
        h = x + self.dropout(a)
        return h + self.dropout(self.ffn_out(F.gelu(self.ffn_in(self.norm2(h))))), probs


class Transformer(nn.Module):
    def __init__(self, layers, heads, width, ffn, dropout=0.1, vocab=VOCAB, max_len=LEN, classes=CLASSES):
        super().__init__()
        self.tok = nn.Embedding(vocab, width)
        self.pos = nn.Embedding(max_len, width)
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(width, heads, ffn, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(width)
        self.classifier = nn.Linear(width, classes)

    def forward(self, tokens):
        mask = tokens.ne(0)
        x = self.dropout(self.tok(tokens) + self.pos(torch.arange(tokens.shape[1]).unsqueeze(0)))
        hidden, attention = [x], []
        for block in self.blocks:
            x, probs = block(x, mask)
            hidden.append(x)
            attention.append(probs)
        return self.classifier(self.norm(x)[:, 0]), hidden, attention


def parse_size(text):
    parts = [int(p) for p in text.split(",")]
    if len(parts) != 4 or min(parts) < 1 or parts[1] % parts[2] != 0:
        raise SystemExit(f"distill_step.py: want layers,width,heads,ffn, got {text!r}")
    return parts


def sized_main(args):
    """bench_step's twin: any size from the command line, fp32 or bf16 autocast."""
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    tl, tw, th, tf = parse_size(args.teacher)
    sl, sw, sh, sf = parse_size(args.student)
    vocab, classes = 8000, 2
    teacher = Transformer(tl, th, tw, tf, 0.0, vocab, args.len, classes).eval()
    student = Transformer(sl, sh, sw, sf, 0.0, vocab, args.len, classes).train()
    opt = torch.optim.AdamW(student.parameters(), lr=1e-3)
    tokens = torch.randint(3, vocab, (args.batch, args.len))
    tokens[: args.batch // 2, args.len // 2:] = 0
    tokens[:, 0] = 2
    labels = torch.randint(0, classes, (args.batch,))
    lam, T = args.lam, args.temperature
    bf16 = args.precision == "bf16"

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            with torch.no_grad():
                zt = teacher(tokens)[0]
            opt.zero_grad()
            zs = student(tokens)[0].float()
            ce = F.cross_entropy(zs, labels)
            kd = T * T * F.kl_div(F.log_softmax(zs / T, 1), F.softmax(zt.float() / T, 1), reduction="batchmean")
            loss = (1 - lam) * ce + lam * kd
            loss.backward()
            opt.step()
        return loss.item()

    for _ in range(args.warmup):
        step()
    profiler = None
    if args.profile:
        # The legacy autograd profiler, as bench_step's RecordProfile: the same op names.
        profiler = torch.autograd.profiler.profile()
        profiler.__enter__()
    start = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    elapsed = time.perf_counter() - start
    if profiler is not None:
        profiler.__exit__(None, None, None)
        profiler.export_chrome_trace(args.profile)
    print(f"python teacher={args.teacher} student={args.student} len={args.len} batch={args.batch} "
          f"steps={args.steps} precision={args.precision} threads={torch.get_num_threads()} "
          f"loss={loss:.4f} ms/step={1000 * elapsed / args.steps:.2f} "
          f"examples/s={args.steps * args.batch / elapsed:.1f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--teacher")
    ap.add_argument("--student", default="2,128,2,512")
    ap.add_argument("--len", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--lambda", dest="lam", type=float, default=0.5)
    ap.add_argument("--temperature", type=float, default=2.0)
    ap.add_argument("--profile", help="with --teacher: write the timed steps' per-operator trace (chrome://tracing JSON)")
    args = ap.parse_args()
    if args.teacher:
        return sized_main(args)
    args.threads = args.threads or 1
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    tl, th, tw, tf, sl, sh, sw, sf = SIZES[args.size]
    teacher, student = Transformer(tl, th, tw, tf).eval(), Transformer(sl, sh, sw, sf).train()
    opt = torch.optim.AdamW(student.parameters(), lr=1e-3)
    tokens = torch.randint(3, VOCAB, (BATCH, LEN))
    tokens[:, 30:] = 0
    tokens[:, 0] = 2
    labels = torch.randint(0, CLASSES, (BATCH,))
    lam, T = 0.7, 4.0

    def step():
        with torch.no_grad():
            zt = teacher(tokens)[0]
        opt.zero_grad()
        zs = student(tokens)[0]
        ce = F.cross_entropy(zs, labels)
        kd = T * T * F.kl_div(F.log_softmax(zs / T, 1), F.softmax(zt / T, 1), reduction="batchmean")
        loss = (1 - lam) * ce + lam * kd
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(5):
        step()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < args.seconds:
        step()
        n += 1
    elapsed = time.perf_counter() - start
    print(json.dumps({"size": args.size, "threads": args.threads,
                      "examples_per_s": n * BATCH / elapsed, "ms_per_step": 1000 * elapsed / n}))


if __name__ == "__main__":
    main()
