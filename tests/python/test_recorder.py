#!/usr/bin/env python3
"""Tests of python/kdscope_recorder against the real KDScope executable.

Usage: /usr/bin/python3 tests/python/test_recorder.py [--kdscope PATH] [--work DIR] [-v]
       KDSCOPE=PATH /usr/bin/python3 -m unittest tests/python/test_recorder.py

A tiny BERT-like transformer (embedding, 2 layers, 2 heads) and a small CNN are trained in
PyTorch on synthetic data, a teacher and a KD student each, with the recorder; the files
are then checked by tests/python/check_run_file.py, `kdscope info`, `kdscope analyze` and
`kdscope export --figure all`, and the numbers KDScope reports are compared with values
computed here from PyTorch's own outputs (accuracy, agreement, KL, linear CKA). A
recorder killed with SIGKILL mid-training must leave a file `kdscope info` opens with
status "running" and every flushed row intact. A real `kdscope run` file replayed through
the recorder must give the same structure: every dataset's type, shape, chunks, filters,
fill value and maximum shape, and every attribute's type.

The kdscope executable: --kdscope, else $KDSCOPE, else build/release/app/kdscope of this
checkout, else `kdscope` on PATH. Exit status 0 when every test passed; the last line says
"N passed, M failed".
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import unittest

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

SOURCE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(SOURCE, "python"))

from kdscope_recorder import RunRecorder, capture, count_parameters, kd_objective  # noqa: E402
from kdscope_recorder import RecorderError  # noqa: E402

CHECKER = os.path.join(SOURCE, "tests", "python", "check_run_file.py")
PYTHON = sys.executable or "/usr/bin/python3"
KDSCOPE = None
WORK = None


def find_kdscope():
    candidates = [os.environ.get("KDSCOPE"), os.path.join(SOURCE, "build", "release", "app", "kdscope"),
                  shutil.which("kdscope")]
    for path in candidates:
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def run(args, timeout=300, env=None):
    """Runs a command; returns (exit code, stdout, stderr)."""
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)
    return proc.returncode, proc.stdout, proc.stderr


def kdscope(*args, timeout=300):
    if KDSCOPE is None:
        raise AssertionError("no kdscope executable (give --kdscope PATH or set KDSCOPE)")
    env = dict(os.environ)
    env.pop("DISPLAY", None)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    return run([KDSCOPE, *args], timeout=timeout, env=env)


# ----- models ---------------------------------------------------------------------------

class Attention(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        self.probs = nn.Identity()  # the attention probabilities pass through here (for hooks)

    def forward(self, x, pad):
        b, l, d = x.shape
        q, k, v = self.qkv(x).view(b, l, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-1, -2) / (d // self.heads) ** 0.5
        scores = scores.masked_fill(pad[:, None, None, :], float("-inf"))
        probs = self.probs(scores.softmax(dim=-1))
        return self.out((probs @ v).transpose(1, 2).reshape(b, l, d)), probs


class Block(nn.Module):
    def __init__(self, width, heads, ffn):
        super().__init__()
        self.attn = Attention(width, heads)
        self.norm1 = nn.LayerNorm(width)
        self.ffn = nn.Sequential(nn.Linear(width, ffn), nn.GELU(), nn.Linear(ffn, width))
        self.norm2 = nn.LayerNorm(width)

    def forward(self, x, pad):
        a, probs = self.attn(x, pad)
        x = self.norm1(x + a)
        return self.norm2(x + self.ffn(x)), probs


class TinyBert(nn.Module):
    """Embedding + layers of self-attention; mean-pooled over real tokens into a linear
    classifier. Returns (logits, hidden states (layers + 1, [B, L, D]), attentions)."""

    def __init__(self, vocab, length, width, layers, heads, ffn, classes):
        super().__init__()
        self.tok = nn.Embedding(vocab, width)
        self.pos = nn.Embedding(length, width)
        self.embed = nn.LayerNorm(width)
        self.layers = nn.ModuleList(Block(width, heads, ffn) for _ in range(layers))
        self.classifier = nn.Linear(width, classes)

    def forward(self, tokens):
        pad = tokens == 0
        x = self.embed(self.tok(tokens) + self.pos(torch.arange(tokens.shape[1]))[None])
        hidden, attentions = [x], []
        for block in self.layers:
            x, probs = block(x, pad)
            hidden.append(x)
            attentions.append(probs)
        keep = (~pad).float()[:, :, None]
        pooled = (x * keep).sum(1) / keep.sum(1).clamp(min=1)
        return self.classifier(pooled), tuple(hidden), tuple(attentions)


class SmallCNN(nn.Module):
    def __init__(self, c1, c2, classes):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, c1, 3, padding=1), nn.ReLU())
        self.block = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU())
        self.classifier = nn.Linear(c2, classes)

    def forward(self, x):
        return self.classifier(self.block(self.stem(x)).mean(dim=(2, 3)))


# ----- data -----------------------------------------------------------------------------

TEXT_LEN = 12
POSITIVE = list(range(3, 13))  # token ids 3..12 "positive" words, 13..22 "negative"
VOCAB = ["[PAD]", "[UNK]", "[CLS]"] + [f"good{i}" for i in range(10)] + [f"bad{i}" for i in range(10)]


def text_data(n, generator):
    """Token sequences: [CLS], 3..9 (odd) words, padding; label 1 when positive words
    outnumber negative ones."""
    tokens = torch.zeros(n, TEXT_LEN, dtype=torch.long)
    labels = torch.zeros(n, dtype=torch.long)
    for i in range(n):
        words = 3 + 2 * int(torch.randint(0, 4, (1,), generator=generator))
        ids = torch.randint(3, 23, (words,), generator=generator)
        tokens[i, 0] = 2
        tokens[i, 1:1 + words] = ids
        labels[i] = int((ids < 13).sum() * 2 > words)
    return tokens, labels


def image_data(n, generator):
    """8x8 images: a horizontal (0), vertical (1) or diagonal (2) bar at a random place,
    plus noise."""
    images = torch.randn(n, 1, 8, 8, generator=generator) * 0.4
    labels = torch.randint(0, 3, (n,), generator=generator)
    for i in range(n):
        at = int(torch.randint(1, 7, (1,), generator=generator))
        if labels[i] == 0:
            images[i, 0, at, :] += 1.0
        elif labels[i] == 1:
            images[i, 0, :, at] += 1.0
        else:
            images[i, 0].diagonal().add_(1.0)
    return images, labels


# ----- training with the recorder -------------------------------------------------------

def kd_loss(student_logits, teacher_logits, temperature):
    """T^2 KL(p^T || q^T), batchmean: KDScope's kd term."""
    return F.kl_div(F.log_softmax(student_logits / temperature, -1), F.softmax(teacher_logits / temperature, -1),
                    reduction="batchmean") * temperature ** 2


def train(rec, task, name, model, forward, x, y, x_eval, epochs, teacher=None, lam=0.0, temperature=1.0,
          seed=0, log_probs=True):
    """Trains `model` with Adam, logging every step; an eval-curve row and the train
    records after each epoch. Returns the number of steps."""
    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    step = 0
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(x.shape[0])
        for start in range(0, x.shape[0], 32):
            batch = order[start:start + 32]
            logits = forward(model, x[batch])
            ce = F.cross_entropy(logits, y[batch])
            terms = {"ce": ce}
            loss = (1 - lam) * ce
            if teacher is not None:
                with torch.no_grad():
                    teacher_logits = forward(teacher, x[batch])
                kd = kd_loss(logits, teacher_logits, temperature)
                terms["kd"] = kd
                loss = loss + lam * kd
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            rec.log_step(task, name, step, loss, **terms)
        model.eval()
        with torch.no_grad():
            rec.log_eval(task, name, epoch=epoch, step=step, logits=forward(model, x_eval))
            if log_probs:
                p = F.softmax(forward(model, x), -1)[torch.arange(x.shape[0]), y]
                rec.log_train_probs(task, name, epoch, step, p)
    return step


def pooled_mean(hidden, tokens):
    keep = (tokens != 0).double()[:, :, None]
    return ((hidden.double() * keep).sum(1) / keep.sum(1)).float()


def linear_cka(x, y):
    """Linear CKA of two [N, D] representations (Kornblith et al. 2019), in float64."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    x = x - x.mean(0)
    y = y - y.mean(0)
    cross = np.linalg.norm(y.T @ x) ** 2
    return cross / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y))


def record_text_run(path):
    """The text run: teacher (2 layers, 2 heads, width 32) recorded from its outputs;
    KD student (2 layers, 2 heads, width 16) recorded through forward hooks, batch by
    batch. Returns the oracle: what PyTorch computed."""
    generator = torch.Generator().manual_seed(11)
    x, y = text_data(384, generator)
    x_eval, y_eval = text_data(160, generator)
    torch.manual_seed(1)
    teacher = TinyBert(len(VOCAB), TEXT_LEN, 32, 2, 2, 64, 2)
    student = TinyBert(len(VOCAB), TEXT_LEN, 16, 2, 2, 32, 2)
    forward = lambda model, tokens: model(tokens)[0]  # noqa: E731
    oracle = {"x_eval": x_eval, "y_eval": y_eval, "models": {}}
    with RunRecorder(path, job="recorder-text", config={"data": "synthetic polarity"}, attention_examples=24,
                     flush_every=10) as rec:
        rec.add_task("words", ["negative", "positive"], y_eval, eval_tokens=x_eval, vocab=VOCAB, train_labels=y,
                     eval_text=[" ".join(VOCAB[int(t)] for t in row if t > 0) for row in x_eval])
        arch = {"type": "pytorch", "class": "TinyBert", "layers": 2, "heads": 2, "width": 32, "ffn": 64}
        rec.add_model("words", "teacher", role="teacher", architecture=arch, module=teacher)
        steps = train(rec, "words", "teacher", teacher, forward, x, y, x_eval, epochs=4)
        teacher.eval()
        with torch.no_grad():
            logits, hidden, attentions = teacher(x_eval)
        rec.record_eval("words", "teacher", logits, hidden_states=hidden, attentions=attentions,
                        classifier=teacher.classifier)
        oracle["models"]["teacher"] = {"logits": logits, "hidden": [pooled_mean(h, x_eval) for h in hidden],
                                       "attentions": torch.stack(attentions, 1)[:24], "steps": steps,
                                       "parameters": count_parameters(teacher)}

        arch = dict(arch, width=16, ffn=32)
        rec.add_model("words", "kd", role="student", architecture=arch,
                      objective=kd_objective(0.7, temperature=2.0), module=student)
        steps = train(rec, "words", "kd", student, forward, x, y, x_eval, epochs=3, teacher=teacher, lam=0.7,
                      temperature=2.0, seed=2)
        student.eval()
        names = ["embed", "layers.0", "layers.1"]
        probs = [("layers.0.attn.probs", "output"), ("layers.1.attn.probs", "output")]
        outputs = []
        with torch.no_grad(), capture(student, hidden=names, attentions=probs) as cap, \
                rec.eval_writer("words", "kd", attention_examples=24) as writer:
            for start in range(0, x_eval.shape[0], 50):  # batches of 50: blocks cross chunks and n_att
                logits, hidden, attentions = student(x_eval[start:start + 50])
                for a, b in zip(cap.hidden, hidden):  # the hooks see exactly the model's outputs
                    assert torch.equal(a, b)
                writer.add(logits, hidden_states=cap.hidden, attentions=cap.attentions)
                outputs.append((logits, hidden, attentions))
            writer.classifier(student.classifier)
        logits = torch.cat([o[0] for o in outputs])
        hidden = [torch.cat([o[1][layer] for o in outputs]) for layer in range(3)]
        oracle["models"]["kd"] = {"logits": logits, "hidden": [pooled_mean(h, x_eval) for h in hidden],
                                  "attentions": torch.cat([torch.stack(o[2], 1) for o in outputs])[:24],
                                  "steps": steps, "parameters": count_parameters(student)}
    return oracle


def record_image_run(path):
    """The image run: CNN teacher and KD student, hidden states of both conv stages taken by
    hooks as feature maps (averaged over space by the recorder, zero-padded to one width)."""
    generator = torch.Generator().manual_seed(5)
    x, y = image_data(300, generator)
    x_eval, y_eval = image_data(90, generator)
    torch.manual_seed(3)
    teacher = SmallCNN(16, 32, 3)
    student = SmallCNN(6, 12, 3)
    forward = lambda model, images: model(images)  # noqa: E731
    oracle = {"x_eval": x_eval, "y_eval": y_eval, "models": {}}
    with RunRecorder(path, job="recorder-images") as rec:
        rec.add_task("bars", ["horizontal", "vertical", "diagonal"], y_eval)
        for name, model, kd in (("teacher", teacher, None), ("kd", student, teacher)):
            rec.add_model("bars", name, role="teacher" if kd is None else "student",
                          architecture={"type": "cnn", "channels": [model.stem[0].out_channels,
                                                                    model.block[1].out_channels]},
                          objective=kd_objective(0.5, temperature=3.0) if kd is not None else None, module=model)
            steps = train(rec, "bars", name, model, forward, x, y, x_eval, epochs=6, teacher=kd,
                          lam=0.5 if kd is not None else 0.0, temperature=3.0, seed=4, log_probs=False)
            model.eval()
            with torch.no_grad(), capture(model, hidden=["stem", "block"]) as cap:
                logits = model(x_eval)
                rec.record_eval("bars", name, logits, hidden_states=cap.hidden, classifier=model.classifier)
                # Averaged over space in float64 then rounded to float32, as the recorder does.
                hidden = [h.double().mean(dim=(2, 3)).float() for h in cap.hidden]
            oracle["models"][name] = {"logits": logits, "hidden": hidden, "steps": steps,
                                      "parameters": count_parameters(model)}
    return oracle


INFO_ROW = re.compile(r"^\s+(\S+)\s+(teacher|student)\s+(\d+)\s+(\d+)\s+(\S+)\s+(\S+)")


def info_rows(text):
    return {m.group(1): m.groups()[1:] for m in map(INFO_ROW.match, text.splitlines()) if m}


class RecordedRuns(unittest.TestCase):
    """The text and image runs, each checked by the checker, info, analyze and export."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="recorder-", dir=WORK)
        cls.runs = {}
        for kind, record in (("text", record_text_run), ("image", record_image_run)):
            path = os.path.join(cls.dir, kind, "run.h5")
            os.makedirs(os.path.dirname(path))
            cls.runs[kind] = (path, record(path))

    def check_file(self, path):
        code, out, err = run([PYTHON, CHECKER, path])
        self.assertEqual(code, 0, out + err)

    def check_stored(self, kind, task):
        path, oracle = self.runs[kind]
        with h5py.File(path, "r") as f:
            self.assertEqual(f.attrs["status"], "complete")
            self.assertEqual(f.attrs["status_message"], "")
            t = f[f"tasks/{task}"]
            np.testing.assert_array_equal(t["eval/labels"][:], oracle["y_eval"].numpy())
            self.assertEqual(list(t["models"]), ["teacher", "kd"])  # creation order
            for name, o in oracle["models"].items():
                m = t[f"models/{name}"]
                np.testing.assert_array_equal(m["eval/logits"][:], o["logits"].numpy())
                np.testing.assert_array_equal(m["train/step"][:], np.arange(1, o["steps"] + 1))
                self.assertEqual(m.attrs["parameter_count"], o["parameters"])
                hidden = m["eval/hidden"][:]
                for layer, h in enumerate(o["hidden"]):
                    # Both sides pool the same float32 states in float64 and round to float32;
                    # only the summation order differs, so they differ by at most one float32
                    # ulp (2^-23 relative); 2 ulp allowed.
                    np.testing.assert_allclose(hidden[:, layer, :h.shape[1]], h.numpy(), rtol=2.4e-7, atol=1e-30)
                    np.testing.assert_array_equal(hidden[:, layer, h.shape[1]:], 0.0)
                if "attentions" in o:  # the model's own float32 tensors, copied: bit-exact
                    np.testing.assert_array_equal(m["eval/attention"][:], o["attentions"].numpy())

    def check_info(self, kind):
        path, oracle = self.runs[kind]
        code, out, err = kdscope("info", path)
        self.assertEqual(code, 0, out + err)
        self.assertIn("status:    complete", out)
        rows = info_rows(out)
        for name, o in oracle["models"].items():
            self.assertIn(name, rows, out)
            role, parameters, steps, _, accuracy = rows[name]
            expected = (o["logits"].argmax(1) == oracle["y_eval"]).double().mean().item()
            # `kdscope info` prints 4 decimals: rounding moves it by at most 5e-5.
            self.assertAlmostEqual(float(accuracy), expected, delta=5e-5, msg=out)
            self.assertEqual(int(parameters), o["parameters"])
            self.assertEqual(int(steps), o["steps"])
        return out

    def check_analysis(self, kind, task):
        path, oracle = self.runs[kind]
        code, out, err = kdscope("analyze", path, "--threads", "1", timeout=600)
        self.assertEqual(code, 0, out + err)
        self.check_file(path)
        teacher, student = oracle["models"]["teacher"], oracle["models"]["kd"]
        y = oracle["y_eval"]
        with h5py.File(path, "r") as f:
            a = f[f"tasks/{task}/analysis"]
            self.assertEqual(a.attrs["status"], "complete", list(a.attrs["skipped"]))
            for name, o in oracle["models"].items():
                self.assertAlmostEqual(a[name].attrs["accuracy"], (o["logits"].argmax(1) == y).double().mean().item(),
                                       places=12)
            s = a["kd"]
            agreement = (teacher["logits"].argmax(1) == student["logits"].argmax(1)).double().mean().item()
            self.assertAlmostEqual(s.attrs["agreement"], agreement, places=12)
            p = F.log_softmax(teacher["logits"].double(), -1)
            q = F.log_softmax(student["logits"].double(), -1)
            mean_kl = (p.exp() * (p - q)).sum(-1).mean().item()
            # A float64 attribute computed in float64 from the same float32 logits: only the
            # order of the sums differs (measured 6e-17).
            self.assertAlmostEqual(s.attrs["mean_kl"], mean_kl, delta=1e-12)
            cka = s["cka"][:]
            expected = np.array([[linear_cka(ht.numpy(), hs.numpy()) for hs in student["hidden"]]
                                 for ht in teacher["hidden"]])
            self.assertEqual(cka.shape, expected.shape)
            # cka is a float32 dataset (rounding: at most 6e-8 for values <= 1), computed in
            # float64 from the stored states, which equal the oracle's to 2 ulp (measured
            # difference below 3e-8).
            np.testing.assert_allclose(cka, expected, rtol=0, atol=1e-6)
            self.assertEqual(s["grad_rescale"].shape, (len(y),))
            return a

    def check_export(self, kind):
        path, _ = self.runs[kind]
        out_dir = os.path.join(os.path.dirname(path), "figures")
        code, out, err = kdscope("export", path, "--figure", "all", "--out", out_dir, timeout=600)
        self.assertEqual(code, 0, out + err)
        files = [n for n in os.listdir(out_dir) if os.path.getsize(os.path.join(out_dir, n)) > 0]
        self.assertTrue(files, f"kdscope export wrote nothing to {out_dir}")

    def test_text_run(self):
        self.check_file(self.runs["text"][0])
        self.check_stored("text", "words")
        self.check_info("text")
        a = self.check_analysis("text", "words")
        self.check_export("text")
        with h5py.File(self.runs["text"][0], "r") as f:
            a = f["tasks/words/analysis"]
            # From the recorded attention: one entropy per layer and head, the mean over the
            # recorded examples' non-padding query rows of -sum_j a_ij ln a_ij.
            real = (self.runs["text"][1]["x_eval"][:24] != 0).numpy()[:, None, None, :]
            for name, o in self.runs["text"][1]["models"].items():
                att = o["attentions"].double().numpy()  # [n_att, Lyr, H, Len, Len]
                row_entropy = -np.where(att > 0, att * np.log(np.where(att > 0, att, 1.0)), 0.0).sum(-1)
                expected = (row_entropy * real).sum((0, 3)) / real.sum((0, 3))
                # A float32 dataset of values below ln 12: rounding at most 1.2e-7.
                np.testing.assert_allclose(a[f"{name}/attention_entropy"][:], expected, rtol=0, atol=5e-7)
            self.assertEqual(a["kd/head_js"].shape, (2, 2, 2))

    def test_image_run(self):
        self.check_file(self.runs["image"][0])
        self.check_stored("image", "bars")
        self.check_info("image")
        self.check_analysis("image", "bars")
        self.check_export("image")


class Status(unittest.TestCase):
    """The status attribute as the recorder leaves it, read with h5py."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="recorder-status-", dir=WORK)

    def small(self, rec, evaluate=True):
        rec.add_task("t", ["a", "b"], [0, 1, 1])
        rec.add_model("t", "teacher", role="teacher", parameter_count=3)
        rec.log_step("t", "teacher", 1, 0.5, ce=0.5)
        if evaluate:
            rec.record_eval("t", "teacher", torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]))

    def status(self, path):
        with h5py.File(path, "r") as f:
            return f.attrs["status"], f.attrs["status_message"], f["tasks/t/models/teacher/train/loss"][:]

    def test_exception_marks_failed_and_keeps_rows(self):
        path = os.path.join(self.dir, "failed.h5")
        with self.assertRaises(ZeroDivisionError):
            with RunRecorder(path) as rec:
                self.small(rec)
                1 / 0
        status, message, loss = self.status(path)
        self.assertEqual((status, message), ("failed", "ZeroDivisionError: division by zero"))
        np.testing.assert_array_equal(loss, [0.5])

    def test_keyboard_interrupt_marks_cancelled(self):
        path = os.path.join(self.dir, "cancelled.h5")
        with self.assertRaises(KeyboardInterrupt):
            with RunRecorder(path) as rec:
                self.small(rec)
                raise KeyboardInterrupt
        self.assertEqual(self.status(path)[0], "cancelled")

    def test_complete_without_eval_is_refused(self):
        path = os.path.join(self.dir, "incomplete.h5")
        with self.assertRaises(RecorderError) as caught:
            with RunRecorder(path) as rec:
                self.small(rec, evaluate=False)
        self.assertIn("/tasks/t/models/teacher has no complete eval/logits", str(caught.exception))
        status, message, loss = self.status(path)
        self.assertEqual(status, "failed")
        np.testing.assert_array_equal(loss, [0.5])  # nothing recorded is lost
        code, out, err = run([PYTHON, CHECKER, path])
        self.assertEqual(code, 0, out + err)

    def test_bad_input_names_file_and_field(self):
        path = os.path.join(self.dir, "bad.h5")
        with RunRecorder(path) as rec:
            with self.assertRaises(RecorderError) as caught:
                rec.add_task("t", ["a", "b"], [0, 2])
            self.assertIn(f"{path}: /tasks/t/eval/labels: label 2 of example 1 is outside 0..1", str(caught.exception))
            self.small(rec)
            with self.assertRaises(RecorderError) as caught:
                rec.log_step("t", "teacher", 1, 0.1)
            self.assertIn("train/step: step 1 after step 1", str(caught.exception))


KILL_CHILD = textwrap.dedent("""
    import sys, numpy as np, torch
    sys.path.insert(0, sys.argv[2])
    from kdscope_recorder import RunRecorder, kd_objective
    torch.manual_seed(0)
    x = torch.randn(200, 6); y = (x[:, 0] > 0).long()
    teacher = torch.nn.Linear(6, 2); student = torch.nn.Linear(6, 2)
    rec = RunRecorder(sys.argv[1], job="kill", flush_every=10**9, flush_seconds=1e9)
    rec.add_task("t", ["neg", "pos"], y[:50])
    rec.add_model("t", "teacher", role="teacher", module=teacher)
    rec.log_step("t", "teacher", 1, 0.7, ce=0.7)
    logits = teacher(x[:50]).detach()
    rec.record_eval("t", "teacher", logits, hidden_states=[x[:50], logits])
    np.save(sys.argv[3], logits.numpy())
    rec.add_model("t", "kd", role="student", module=student, objective=kd_objective(0.5, 2.0))
    opt = torch.optim.SGD(student.parameters(), lr=0.01)
    for step in range(1, 54):
        out = student(x[50:])
        ce = torch.nn.functional.cross_entropy(out, y[50:])
        opt.zero_grad(); ce.backward(); opt.step()
        rec.log_step("t", "kd", step, ce, ce=ce)
        print(f"STEP {step} {float(np.float32(ce.item()))!r}", flush=True)
        if step % 7 == 0:
            rec.flush()
            print(f"FLUSHED {step}", flush=True)
    # Steps 50..53 are logged but not flushed. Wait here to be killed: the kill comes at
    # this known point, never during a flush (which the format does not cover).
    print("WAITING", flush=True)
    sys.stdin.readline()
    print("NOT KILLED", flush=True)
""")


class Killed(unittest.TestCase):
    def test_sigkill_leaves_readable_running_file(self):
        work = tempfile.mkdtemp(prefix="recorder-kill-", dir=WORK)
        path = os.path.join(work, "run.h5")
        script = os.path.join(work, "child.py")
        with open(script, "w") as out:
            out.write(KILL_CHILD)
        child = subprocess.Popen([PYTHON, script, path, os.path.join(SOURCE, "python"),
                                  os.path.join(work, "teacher_logits.npy")], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
        lines = []
        for line in child.stdout:  # no timing: read until the child waits (or exits)
            lines.append(line.split())
            if lines[-1] == ["WAITING"]:
                break
        os.kill(child.pid, signal.SIGKILL)
        lines += [line.split() for line in child.stdout.read().splitlines()]
        child.stdin.close()
        child.wait()
        self.assertEqual(child.returncode, -signal.SIGKILL, lines[-3:])
        self.assertIn(["WAITING"], lines, "the child did not reach its waiting point")
        printed = {int(s): float(v) for kind, s, v in (l for l in lines if l[0] == "STEP")}
        last_flush = max(int(l[1]) for l in lines if l[0] == "FLUSHED")
        self.assertEqual((last_flush, max(printed)), (49, 53))

        code, out, err = kdscope("info", path)
        self.assertEqual(code, 0, out + err)
        self.assertIn("status:    running", out)
        rows = info_rows(out)
        self.assertEqual(rows["kd"][4], "-", out)  # not evaluated: no accuracy
        teacher_logits = np.load(os.path.join(work, "teacher_logits.npy"))
        with h5py.File(path, "r") as f:
            self.assertEqual(f.attrs["status"], "running")
            m = f["tasks/t/models/kd/train"]
            steps = m["step"][:]
            # Exactly the flushed rows: 1..49; the unflushed 50..53 died with the process.
            np.testing.assert_array_equal(steps, np.arange(1, last_flush + 1))
            np.testing.assert_array_equal(m["loss"][:], np.array([printed[s] for s in steps], np.float32))
            np.testing.assert_array_equal(m["terms/ce"][:], m["loss"][:])
            np.testing.assert_array_equal(f["tasks/t/models/teacher/eval/logits"][:], teacher_logits)
        with h5py.File(path, "r") as f:
            expected = (teacher_logits.argmax(1) == f["tasks/t/eval/labels"][:]).mean()
        self.assertAlmostEqual(float(rows["teacher"][4]), expected, delta=5e-5)  # info prints 4 decimals
        code, out, err = run([PYTHON, CHECKER, path])
        self.assertEqual(code, 0, out + err)


def dataset_layout(ds):
    """What must be equal between a KDScope file and the recorder's replay of it."""
    plist = ds.id.get_create_plist()
    filters = [plist.get_filter(i)[:2] for i in range(plist.get_nfilters())]
    string = h5py.check_string_dtype(ds.dtype) is not None
    fill = None if string else ds.fillvalue  # (h5py 3.7 crashes reading a string dataset's fill value)
    return {"dtype": "vlen utf-8" if string else str(ds.dtype),
            "shape": ds.shape, "maxshape": ds.maxshape, "chunks": ds.chunks, "filters": filters,
            "fill": "nan" if isinstance(fill, (float, np.floating)) and np.isnan(fill) else repr(fill),
            "fill_time": plist.get_fill_time(),
            "attrs": attr_layout(ds)}


def attr_layout(obj):
    out = {}
    for name in obj.attrs:
        a = obj.attrs.get_id(name)
        info = h5py.check_string_dtype(a.dtype)
        out[name] = (f"vlen {info.encoding}" if info else str(a.dtype), a.shape)
    return out


def layout(path):
    items = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            items[name] = dataset_layout(obj)
        else:
            gcpl = obj.id.get_create_plist()
            items[name] = {"group": True, "order": gcpl.get_link_creation_order(), "attrs": attr_layout(obj)}

    with h5py.File(path, "r") as f:
        items["/"] = {"attrs": attr_layout(f)}
        f.visititems(visit)
        items["/"]["superblock"] = f.id.get_create_plist().get_version()[0]
    return items


def replay(source, target):
    """Records `source` (a run file of `kdscope run`) again through the recorder."""
    with h5py.File(source, "r") as f, RunRecorder(target, job="replay", attention_examples=10**9) as rec:
        for task_name, t in f["tasks"].items():
            text = t.attrs["kind"] == "text"
            rec.add_task(task_name, list(t.attrs["class_names"]), t["eval/labels"][:],
                         eval_tokens=t["eval/tokens"][:] if text else None,
                         vocab=list(t["vocab"].asstr()[:]) if text else None,
                         eval_text=list(t["eval/text"].asstr()[:]) if "eval/text" in t else None,
                         train_labels=t["train/labels"][:] if "train/labels" in t else None,
                         super_class_of=t["super_class_of"][:] if "super_class_of" in t else None,
                         eval_source_index=t["eval/source_index"][:] if "eval/source_index" in t else None,
                         eval_group=list(t["eval/group"].asstr()[:]) if "eval/group" in t else None,
                         train_source_index=t["train/source_index"][:] if "train/source_index" in t else None,
                         source={k: (int(v) if np.ndim(v) == 0 and np.asarray(v).dtype.kind in "iu" else
                                     (v.decode() if isinstance(v, bytes) else str(v)))
                                 for k, v in t.attrs.items() if k not in ("num_classes", "class_names", "kind")})
            for name, m in t["models"].items():
                rec.add_model(task_name, name, role=m.attrs["role"], architecture=m.attrs["architecture"],
                              objective=m.attrs["objective"], parameter_count=m.attrs["parameter_count"],
                              precision=m.attrs["precision"] if "precision" in m.attrs else None)
                terms = {k: v[:] for k, v in m["train/terms"].items()} if "train/terms" in m else {}
                curve = {k: v[:] for k, v in m["eval_curve"].items()} if "eval_curve" in m else None
                records = m["train_records"] if "train_records" in m else None
                # Replayed in the order a loop records them: steps, and after the step of
                # each evaluation its train records and eval-curve row.
                events = [(int(s), 0, i) for i, s in enumerate(m["train/step"][:])]
                if curve is not None:
                    events += [(int(s), 1, e) for e, s in enumerate(curve["step"])]
                if records is not None:
                    events += [(int(s), 1, -1 - r) for r, s in enumerate(records["step"][:])
                               if curve is None or r >= len(curve["step"])]
                for step, kind, i in sorted(events):
                    if kind == 0:
                        rec.log_step(task_name, name, step, m["train/loss"][i],
                                     **{k: v[i] for k, v in terms.items() if not np.isnan(v[i])})
                        continue
                    r = i if i >= 0 else -1 - i
                    if records is not None and r < records["epoch"].shape[0]:
                        values = records["p_true" if "p_true" in records else "q_true"]
                        rec.log_train_probs(task_name, name, records["epoch"][r], records["step"][r], values[r])
                    if i >= 0:
                        rec.log_eval(task_name, name, curve["epoch"][i], step, accuracy=curve["accuracy"][i],
                                     loss=curve["loss"][i])
                hidden = m["eval/hidden"][:] if "eval/hidden" in m else None
                attention = m["eval/attention"][:] if "eval/attention" in m else None
                rec.record_eval(task_name, name, m["eval/logits"][:],
                                hidden_states=None if hidden is None else [hidden[:, i] for i in range(hidden.shape[1])],
                                attentions=None if attention is None else [attention[:, i] for i in
                                                                           range(attention.shape[1])],
                                attention_examples=0 if attention is None else attention.shape[0],
                                pooling=m["eval/hidden"].attrs["pooling"] if hidden is not None else None,
                                classifier=(m["classifier/weight"][:], m["classifier/bias"][:]))


def analysis_objects(group):
    """Every object of an analysis group with its attributes and data (NaN as a string,
    so that NaN compares equal to NaN)."""
    def value(v):
        v = np.asarray(v)
        if v.dtype.kind == "f":
            return [repr(x) for x in v.ravel().tolist()], v.shape
        if v.dtype.kind in "OSU":
            return [x.decode() if isinstance(x, bytes) else str(x) for x in v.ravel().tolist()], v.shape
        return v.tolist()
    out = {}

    def visit(name, obj):
        attrs = {k: value(obj.attrs[k]) for k in obj.attrs}
        out[name] = (attrs, value(obj[()]) if isinstance(obj, h5py.Dataset) else None)

    group.visititems(visit)
    return out


class SameLayoutAsKdscopeRun(unittest.TestCase):
    """A real `kdscope run` file and the recorder's replay of its data: the same paths,
    types, shapes, chunks, filters, fill values and attribute types; the same `kdscope
    info` rows and `kdscope analyze` results."""

    def replay_and_compare(self, job, name):
        work = tempfile.mkdtemp(prefix=f"recorder-{name}-", dir=WORK)
        with open(os.path.join(work, "job.json"), "w") as out:
            json.dump(job, out)
        code, out, err = kdscope("run", os.path.join(work, "job.json"), "--out", os.path.join(work, "run"),
                                 timeout=600)
        self.assertEqual(code, 0, out + err)
        source, target = os.path.join(work, "run", "run.h5"), os.path.join(work, "replay.h5")
        replay(source, target)
        a, b = layout(source), layout(target)
        self.assertEqual(sorted(a), sorted(b))
        for path in a:
            self.assertEqual(a[path], b[path], path)
        # And kdscope reads the same numbers from both.
        info = [kdscope("info", p) for p in (source, target)]
        self.assertEqual([c for c, _, _ in info], [0, 0], info)
        self.assertEqual(info_rows(info[0][1]), info_rows(info[1][1]))
        # `kdscope analyze` gives the same results on both, bit for bit (the same
        # computation on the same data), except heads and probes: they reload models from
        # checkpoints, which the recorder's file has not. The copy of the source is analysed
        # away from its checkpoints, so both skip them.
        copy = os.path.join(work, "source-copy.h5")
        shutil.copy(source, copy)
        for p in (copy, target):
            code, out, err = kdscope("analyze", p, "--threads", "1", timeout=600)
            self.assertEqual(code, 0, out + err)
        with h5py.File(copy, "r") as fa, h5py.File(target, "r") as fb:
            for task in fa["tasks"]:
                a, b = fa[f"tasks/{task}/analysis"], fb[f"tasks/{task}/analysis"]
                objects = analysis_objects(a)
                self.assertGreater(len(objects), 20, list(objects))  # the analyses did run
                self.assertEqual(objects, analysis_objects(b), task)
                for name in ("status", "analyses", "options"):
                    self.assertEqual(str(a.attrs[name]), str(b.attrs[name]), name)
                skipped = [[s for s in g.attrs["skipped"] if not s.startswith(("heads", "probes"))] for g in (a, b)]
                self.assertEqual(skipped[0], skipped[1])
                self.assertTrue(any(s.startswith("heads, probes:") for s in b.attrs["skipped"]))

    def test_vector_job(self):
        self.replay_and_compare({
            "name": "replay-vector", "seed": 4,
            "tasks": [{"name": "synthetic_hierarchy", "super_classes": 2, "classes_per_super": 2, "dim": 8,
                       "examples_per_class": 40}],
            "teacher": {"architecture": {"type": "mlp", "hidden": [16]}, "training": {"epochs": 2, "batch_size": 16}},
            "students": [{"name": "kd", "architecture": {"type": "mlp", "hidden": [8]},
                          "training": {"epochs": 2, "batch_size": 16},
                          "objective": {"lambda": 0.5, "temperature": 2.0}}],
            "recording": {"log_every": 1}, "analyze": False}, "vector")

    def test_text_job(self):
        self.replay_and_compare({
            "name": "replay-text", "seed": 1,
            "tasks": [{"name": "polarity", "max_len": 16, "vocab_size": 300, "max_examples": 300}],
            "teacher": {"architecture": {"type": "transformer", "layers": 2, "heads": 2, "width": 16, "ffn": 32},
                        "training": {"epochs": 1, "batch_size": 32}},
            "students": [{"name": "kd", "architecture": {"type": "transformer", "layers": 1, "heads": 2,
                                                         "width": 8, "ffn": 16},
                          "training": {"epochs": 1, "batch_size": 32}, "objective": {"lambda": 0.5}}],
            "recording": {"attention_examples": 8, "log_every": 2}, "analyze": False}, "text")


def main(argv):
    global KDSCOPE, WORK
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kdscope", help="the kdscope executable")
    parser.add_argument("--work", help="folder for the test files (default: a temporary folder)")
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("tests", nargs="*", help="test names (e.g. Killed), default all")
    args = parser.parse_args(argv)
    KDSCOPE = args.kdscope or find_kdscope()
    if args.work:
        os.makedirs(args.work, exist_ok=True)
        WORK = args.work
    torch.set_num_threads(1)
    loader = unittest.defaultTestLoader
    module = sys.modules[__name__]
    suite = loader.loadTestsFromNames(args.tests, module) if args.tests else loader.loadTestsFromModule(module)
    result = unittest.TextTestRunner(verbosity=2 if args.verbose else 1, resultclass=CountingResult).run(suite)
    # A failed setUpClass is one error for the tests it kept from running.
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    print(f"{result.passed} passed, {failed} failed")
    return 0 if failed == 0 and result.passed > 0 else 1


class CountingResult(unittest.TextTestResult):
    """Counts the tests that passed (not those skipped or never run)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.passed = 0

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed += 1


KDSCOPE = find_kdscope()
if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
