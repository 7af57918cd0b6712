"""RunRecorder: writes a KDScope run file (format version 1) from your own training loop.

The paths, types, shapes, attributes, chunking and flush points are those of
docs/run-format.md, as `kdscope run` writes them (core/record/run_writer.cpp).
"""

import json
import math
import os
import platform
import sys
import time

import h5py
import numpy as np

from . import _h5

__version__ = "0.1.0"

FORMAT = "kdscope-run"
FORMAT_VERSION = 1
STATUSES = ("running", "complete", "cancelled", "failed")
EVAL_BLOCK_ROWS = 128  # rows pooled and written at a time (as KDScope's evaluation)


# The task-source attributes of /tasks/<task> (docs/run-format.md, "Task source") and their types.
_SOURCE_ATTRS = {"source": str, "source_path": str, "source_bytes": int, "source_format": str,
                 "source_eval_path": str, "source_label_path": str, "source_fields": str, "tokenizer": str,
                 "tokenizer_vocab": str, "tokenizer_lower_case": int}

class RecorderError(ValueError):
    """A call the run file cannot take; the message names the file and the object."""


def _numpy(x, dtype=None):
    """A tensor (any device, with or without grad), array or list as a NumPy array."""
    if hasattr(x, "detach"):
        x = x.detach()
        if hasattr(x, "cpu"):
            x = x.cpu()
        if dtype is not None and hasattr(x, "float") and np.dtype(dtype).kind == "f":
            x = x.float()
        x = x.numpy()
    return np.asarray(x, dtype=dtype)


def _scalar(x):
    if hasattr(x, "detach"):
        x = x.detach()
        if x.numel() != 1:
            raise ValueError(f"expected a single value, got a tensor of shape {list(x.shape)}")
        return float(x.item())
    return float(x)


def _check_name(path, kind, name):
    if not isinstance(name, str) or not name or name in (".", "..") or "/" in name:
        raise RecorderError(f"{path}: invalid {kind} name {name!r} (it must be non-empty, not '.' or '..', "
                            f"and contain no '/')")


def ce_objective(label_smoothing=0.0):
    """The objective attribute of a model trained with (label-smoothed) cross-entropy,
    in the form KDScope writes (core/distill/objectives.cpp), so `kdscope analyze`
    recognises it."""
    return kd_objective(0.0, label_smoothing=label_smoothing)


def kd_objective(lam, temperature=1.0, t_squared=True, label_smoothing=0.0, teacher_targets="full",
                 logit_mse=0.0):
    """The objective of a KD student: (1 - lam) * ce + lam * kd (+ logit_mse * logit_mse),
    kd = T^2 KL(p^T || q^T) (without T^2 when `t_squared` is False), batchmean. The terms
    you log with `log_step` should be these terms, unweighted."""
    terms = [{"name": "ce", "weight": 1.0 - lam, "label_smoothing": label_smoothing,
              "formula": "-sum_c target_c log q_c, target = (1-eps) onehot(y) + eps/C",
              "reduction": "mean over examples"}]
    if lam > 0.0:
        terms.append({"name": "kd", "weight": lam, "temperature": temperature, "t_squared": bool(t_squared),
                      "teacher_targets": teacher_targets,
                      "formula": "T^2 * KL(p^T || q^T)" if t_squared else "KL(p^T || q^T)",
                      "reduction": "sum over classes, mean over examples (batchmean)"})
    if logit_mse > 0.0:
        terms.append({"name": "logit_mse", "weight": logit_mse, "formula": "(z_s - z_t)^2",
                      "reduction": "mean over classes and examples"})
    return {"total": "sum of weight * term", "terms": terms}


def count_parameters(module):
    """Trainable parameters of an nn.Module."""
    return int(sum(p.numel() for p in module.parameters() if p.requires_grad))


class _Task:
    def __init__(self, name, classes, examples, seq_len, kind, train_examples):
        self.name = name
        self.classes = classes
        self.examples = examples
        self.seq_len = seq_len
        self.kind = kind
        self.train_examples = train_examples
        self.labels = None  # int64 [N], for eval curves computed from logits
        self.tokens = None  # int64 [N, Len] (text tasks), for pooling
        self.models = {}


class _Model:
    def __init__(self, name, role):
        self.name = name
        self.role = role
        self.pending = []  # (step, loss, {term: value}) not yet written
        self.last_step = None
        self.evaluated = False
        self.eval_writer = None


class RunRecorder:
    """Records one run file. Use it as a context manager:

        with RunRecorder("run.h5", job="my-kd") as rec:
            rec.add_task("sst2", class_names=["negative", "positive"], eval_labels=y)
            rec.add_model("sst2", "teacher", role="teacher", module=teacher)
            ...
            rec.log_step("sst2", "teacher", step, loss, ce=loss)
            rec.log_eval("sst2", "teacher", epoch=1, step=step, logits=eval_logits)
            rec.record_eval("sst2", "teacher", eval_logits, hidden_states=hs, attentions=att)

    The file says status "running" from the moment it exists; leaving the `with` block
    sets "complete" (an exception: "failed", KeyboardInterrupt: "cancelled", each with the
    message). Rows are flushed to disk (HDF5 flush + fsync) every `flush_every` logged steps
    or `flush_seconds` seconds, at each eval-curve row, after each evaluation and at the
    end; a process killed at any point leaves a file that opens, says "running" and holds
    everything up to the last flush.

    `config` (any JSON-serialisable dict: your hyperparameters) is stored in the root
    attribute `job` with the job name and the recorder's version. `float16` stores
    hidden states and attention as half precision (recording.float16 of KDScope).
    """

    def __init__(self, path, job="recorded", config=None, flush_every=100, flush_seconds=30.0,
                 attention_examples=64, pooling="mean", float16=False):
        self.path = os.fspath(path)
        if pooling not in ("mean", "cls"):
            raise RecorderError(f"{self.path}: pooling {pooling!r} is neither 'mean' nor 'cls'")
        self.flush_every = int(flush_every)
        self.flush_seconds = float(flush_seconds)
        self.attention_examples = int(attention_examples)
        self.pooling = pooling
        self.activation_dtype = _h5.FLOAT16 if float16 else _h5.FLOAT32
        self._tasks = {}
        self._unflushed = 0
        self._last_flush = time.monotonic()
        self._status = None
        self._job = {"name": str(job),
                     "recorder": {"package": "kdscope_recorder", "version": __version__,
                                  "python": platform.python_version(),
                                  "torch": sys.modules["torch"].__version__ if "torch" in sys.modules else None},
                     "config": config if config is not None else {},
                     "tasks": []}
        try:
            job_json = json.dumps(self._job)
        except (TypeError, ValueError) as error:
            raise RecorderError(f"{self.path}: config is not JSON-serialisable: {error}") from None
        self._f = _h5.open_for_writing(self.path)
        self._fd = os.open(self.path, os.O_RDONLY)
        f = self._f
        _h5.set_str(f, "format", FORMAT)
        _h5.set_int(f, "format_version", FORMAT_VERSION)
        _h5.set_str(f, "status", "running")
        _h5.set_str(f, "status_message", "")
        _h5.set_str(f, "job", job_json)
        _h5.set_str(f, "kdscope_version", f"kdscope_recorder {__version__}")
        # The processes that trained the run (docs/distributed.md): the recorder records one
        # process's training (under torch.distributed, record from rank 0 only).
        _h5.set_int(f, "world_size", 1)
        _h5.ensure_group(f, "/tasks")
        # From here on the file opens and says "running", whatever happens to the process.
        self.flush()

    # ----- context manager ---------------------------------------------------------------

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if self._f is None:
            return False
        if exc_type is None:
            self.close()
        elif issubclass(exc_type, KeyboardInterrupt):
            self.close("cancelled", "cancelled (KeyboardInterrupt) while recording")
        else:
            self.close("failed", f"{exc_type.__name__}: {exc}")
        return False

    # ----- structure ---------------------------------------------------------------------

    def _task(self, task):
        if task not in self._tasks:
            raise RecorderError(f"{self.path}: no task {task!r} (call add_task first)")
        return self._tasks[task]

    def _model(self, task, model):
        t = self._task(task)
        if model not in t.models:
            raise RecorderError(f"{self.path}: task {task!r} has no model {model!r} (call add_model first)")
        return t.models[model]

    def _open(self):
        if self._f is None:
            raise RecorderError(f"{self.path}: the recorder is closed")
        return self._f

    def add_task(self, name, class_names, eval_labels, eval_tokens=None, vocab=None, eval_text=None,
                 train_labels=None, super_class_of=None, eval_source_index=None, eval_group=None,
                 train_source_index=None, source=None):
        """Writes /tasks/<name>: its classes and eval split (flushed at once).

        class_names: C names (labels index them). eval_labels: [N] integers 0..C-1, the
        eval examples in the order you will evaluate them. Text tasks: eval_tokens [N, Len]
        token ids, [CLS] (or your first token) first, padding id 0 after the text; vocab:
        the token of each id (default: "[PAD]", "[UNK]", "[CLS]", then "#<id>"); eval_text:
        optional original texts. train_labels: [Ntrain], needed only for per-example
        training records (log_train_probs). Optional additions: super_class_of [C],
        eval_source_index [N] and train_source_index [Ntrain] (each example's index in your
        dataset before splitting), eval_group [N] (a source group name per example).
        source: optional dict of the task-source attributes of docs/run-format.md ("Task
        source"): "source" ("builtin" or "file"), "source_path", "source_bytes" (int),
        "source_format", "source_eval_path", "source_label_path", "source_fields" (JSON
        text), "tokenizer", "tokenizer_vocab", "tokenizer_lower_case" (int)."""
        f = self._open()
        _check_name(self.path, "task", name)
        t = f"/tasks/{name}"
        if name in self._tasks or t in f:
            raise RecorderError(f"{self.path}: {t}: the task is already written")
        class_names = [str(c) for c in class_names]
        classes = len(class_names)
        if classes == 0:
            raise RecorderError(f"{self.path}: {t}: the task has no class names")
        labels = _numpy(eval_labels).astype(np.int64, copy=False).reshape(-1)
        bad = np.flatnonzero((labels < 0) | (labels >= classes))
        if bad.size:
            raise RecorderError(f"{self.path}: {t}/eval/labels: label {labels[bad[0]]} of example {bad[0]} "
                                f"is outside 0..{classes - 1}")
        n = labels.shape[0]
        tokens = None
        if eval_tokens is not None:
            tokens = _numpy(eval_tokens).astype(np.int64, copy=False)
            if tokens.ndim != 2 or tokens.shape[0] != n or tokens.shape[1] == 0:
                raise RecorderError(f"{self.path}: {t}/eval/tokens: has shape {list(tokens.shape)}, expected "
                                    f"[{n}, Len] ({n} eval labels)")
            if tokens.size and tokens.min() < 0:
                raise RecorderError(f"{self.path}: {t}/eval/tokens: token id {tokens.min()} is negative")
            if vocab is None:
                size = int(tokens.max()) + 1 if tokens.size else 3
                vocab = ["[PAD]", "[UNK]", "[CLS]"][:size] + [f"#{i}" for i in range(3, size)]
            vocab = list(vocab)
            if tokens.size and tokens.max() >= len(vocab):
                raise RecorderError(f"{self.path}: {t}/eval/tokens: token id {tokens.max()} is outside the "
                                    f"vocabulary of {len(vocab)}")
        elif vocab is not None or eval_text is not None:
            raise RecorderError(f"{self.path}: {t}: vocab and eval_text belong to a text task (give eval_tokens)")
        if eval_text is not None and len(eval_text) != n:
            raise RecorderError(f"{self.path}: {t}/eval/text: {len(eval_text)} texts for {n} examples")
        train = None
        if train_labels is not None:
            train = _numpy(train_labels).astype(np.int64, copy=False).reshape(-1)
            bad = np.flatnonzero((train < 0) | (train >= classes))
            if bad.size:
                raise RecorderError(f"{self.path}: {t}/train/labels: label {train[bad[0]]} of example "
                                    f"{bad[0]} is outside 0..{classes - 1}")
        supers = None
        if super_class_of is not None:
            supers = _numpy(super_class_of).astype(np.int64, copy=False).reshape(-1)
            if supers.shape[0] != classes:
                raise RecorderError(f"{self.path}: {t}/super_class_of: {supers.shape[0]} entries for "
                                    f"{classes} classes")

        def index(values, rows, path):
            if values is None:
                return None
            values = _numpy(values).astype(np.int64, copy=False).reshape(-1)
            if rows is None or values.shape[0] != rows:
                raise RecorderError(f"{self.path}: {t}/{path}: {values.shape[0]} entries for {rows} examples")
            return values
        eval_source = index(eval_source_index, n, "eval/source_index")
        train_source = index(train_source_index, None if train is None else train.shape[0], "train/source_index")
        if eval_group is not None and len(eval_group) != n:
            raise RecorderError(f"{self.path}: {t}/eval/group: {len(eval_group)} groups for {n} examples")

        source = dict(source or {})
        unknown = sorted(set(source) - set(_SOURCE_ATTRS))
        if unknown:
            raise RecorderError(f"{self.path}: {t}: unknown task-source attribute(s) {unknown} "
                                f"(known: {', '.join(_SOURCE_ATTRS)})")

        g = _h5.ensure_group(f, t)
        _h5.set_int(g, "num_classes", classes)
        _h5.set_str_array(g, "class_names", class_names)
        _h5.set_str(g, "kind", "text" if tokens is not None else "vector")
        for key in _SOURCE_ATTRS:
            if key in source:
                if _SOURCE_ATTRS[key] is int:
                    _h5.set_int(g, key, int(source[key]))
                else:
                    _h5.set_str(g, key, str(source[key]))
        _h5.write_array(f, f"{t}/eval/labels", _h5.INT64, labels, compress=True)
        if tokens is not None:
            _h5.write_array(f, f"{t}/eval/tokens", _h5.INT64, tokens, compress=True)
            _h5.write_strings(f, f"{t}/vocab", vocab)
            if eval_text is not None:
                _h5.write_strings(f, f"{t}/eval/text", eval_text)
        if eval_source is not None:
            _h5.write_array(f, f"{t}/eval/source_index", _h5.INT64, eval_source, compress=True)
        if eval_group is not None:
            _h5.write_strings(f, f"{t}/eval/group", eval_group)
        if supers is not None:
            _h5.write_array(f, f"{t}/super_class_of", _h5.INT64, supers, compress=False)
        if train is not None:
            _h5.write_array(f, f"{t}/train/labels", _h5.INT64, train, compress=train.shape[0] > 0)
            if train_source is not None:
                _h5.write_array(f, f"{t}/train/source_index", _h5.INT64, train_source,
                                compress=train.shape[0] > 0)
        _h5.ensure_group(f, f"{t}/models")
        task = _Task(name, classes, n, tokens.shape[1] if tokens is not None else 0,
                     "text" if tokens is not None else "vector", train.shape[0] if train is not None else None)
        task.labels = labels
        task.tokens = tokens
        self._tasks[name] = task
        self._job["tasks"].append({"name": name, "classes": classes, "eval_examples": n,
                                   "kind": task.kind})
        _h5.set_str(f, "job", json.dumps(self._job))
        self.flush()

    def add_model(self, task, name, role="student", architecture=None, objective=None, parameter_count=None,
                  module=None, precision=None):
        """Begins /tasks/<task>/models/<name> (flushed at once). `name` is "teacher" for the
        teacher (one per task, written first, as KDScope does). architecture: a dict (stored
        as JSON; default: the module's class name). objective: a dict with every term and
        weight (use ce_objective() / kd_objective() for KDScope's form, which `kdscope
        analyze` understands; default: ce_objective()). parameter_count: trainable
        parameters (default: counted from `module`). precision: "fp32" or "bf16", the
        arithmetic the model was trained at (default: not recorded, read as unknown)."""
        f = self._open()
        t = self._task(task)
        _check_name(self.path, "model", name)
        m = f"/tasks/{task}/models/{name}"
        if role not in ("teacher", "student"):
            raise RecorderError(f"{self.path}: {m}: role {role!r} is neither 'teacher' nor 'student'")
        if name in t.models or m in f:
            raise RecorderError(f"{self.path}: {m}: the model is already written")
        if precision not in (None, "fp32", "bf16"):
            raise RecorderError(f"{self.path}: {m}: precision {precision!r} is neither 'fp32' nor 'bf16'")
        if parameter_count is None:
            if module is None:
                raise RecorderError(f"{self.path}: {m}: give parameter_count or module")
            parameter_count = count_parameters(module)
        if architecture is None:
            architecture = {"type": "pytorch", "class": type(module).__name__ if module is not None else "unknown"}
        if objective is None:
            objective = ce_objective()
        try:
            architecture_json = architecture if isinstance(architecture, str) else json.dumps(architecture)
            objective_json = objective if isinstance(objective, str) else json.dumps(objective)
            json.loads(architecture_json)
            json.loads(objective_json)
        except (TypeError, ValueError) as error:
            raise RecorderError(f"{self.path}: {m}: architecture and objective must be JSON: {error}") from None
        g = _h5.ensure_group(f, m)
        _h5.set_str(g, "role", role)
        _h5.set_str(g, "architecture", architecture_json)
        _h5.set_str(g, "objective", objective_json)
        _h5.set_int(g, "parameter_count", int(parameter_count))
        if precision is not None:
            _h5.set_str(g, "precision", precision)
        t.models[name] = _Model(name, role)
        self.flush()

    # ----- training logs -----------------------------------------------------------------

    def log_step(self, task, model, step, loss, **terms):
        """Logs the total objective `loss` at optimizer step `step` (from 1, increasing) and
        each term of the objective, unweighted (e.g. ce=..., kd=...). Values may be
        tensors. Written and flushed in blocks (see the class)."""
        self._open()
        mdl = self._model(task, model)
        step = int(step)
        if mdl.last_step is not None and step <= mdl.last_step:
            raise RecorderError(f"{self.path}: /tasks/{task}/models/{model}/train/step: step {step} after "
                                f"step {mdl.last_step} (steps must increase)")
        values = {}
        for term, value in terms.items():
            _check_name(self.path, "term", term)
            values[term] = _scalar(value)
        mdl.pending.append((step, _scalar(loss), values))
        mdl.last_step = step
        self._unflushed += 1
        if self._unflushed >= self.flush_every or time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def _write_pending(self):
        f = self._f
        for task in self._tasks.values():
            for mdl in task.models.values():
                if not mdl.pending:
                    continue
                m = f"/tasks/{task.name}/models/{mdl.name}"
                before = _h5.rows_of(f, f"{m}/train/step")
                steps = [row[0] for row in mdl.pending]
                names = []
                for _, _, terms in mdl.pending:
                    names.extend(name for name in terms if name not in names)
                if f"{m}/train/terms" in f:
                    names.extend(name for name in f[f"{m}/train/terms"] if name not in names)
                # As RunWriter::appendTrainLog: loss and terms first, step last (a reader
                # takes the step column's length as the log's length); a term absent from a
                # row holds NaN there.
                _h5.append_column(f, f"{m}/train/loss", _h5.FLOAT32, [row[1] for row in mdl.pending], before)
                for name in names:
                    _h5.append_column(f, f"{m}/train/terms/{name}", _h5.FLOAT32,
                                      [row[2].get(name, math.nan) for row in mdl.pending], before)
                _h5.append_column(f, f"{m}/train/step", _h5.INT64, steps, before)
                mdl.pending = []

    def log_eval(self, task, model, epoch, step, logits=None, accuracy=None, loss=None):
        """Appends a row to eval_curve (epoch from 1, the optimizer step, eval accuracy
        0..1 and eval cross-entropy in nats per example) and flushes: the end-of-epoch
        flush point. Give the eval split's logits [N, C] (accuracy and loss are computed
        against the task's eval labels, in float64), or accuracy and loss yourself.
        Returns (accuracy, loss)."""
        f = self._open()
        t = self._task(task)
        self._model(task, model)
        m = f"/tasks/{task}/models/{model}"
        if logits is not None:
            z = _numpy(logits, np.float64)
            if z.shape != (t.examples, t.classes):
                raise RecorderError(f"{self.path}: {m}/eval_curve: logits of shape {list(z.shape)}, expected "
                                    f"[{t.examples}, {t.classes}] (eval examples, classes)")
            accuracy = float(np.mean(z.argmax(axis=1) == t.labels)) if t.examples else math.nan
            shifted = z - z.max(axis=1, keepdims=True)
            log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
            loss = float(-np.mean(log_probs[np.arange(t.examples), t.labels])) if t.examples else math.nan
        if accuracy is None or loss is None:
            raise RecorderError(f"{self.path}: {m}/eval_curve: give logits, or accuracy and loss")
        accuracy, loss = float(accuracy), float(loss)
        if not 0.0 <= accuracy <= 1.0:
            raise RecorderError(f"{self.path}: {m}/eval_curve/accuracy: {accuracy} is not a fraction 0..1")
        self._write_pending()
        c = f"{m}/eval_curve"
        before = _h5.rows_of(f, f"{c}/step")
        _h5.append_column(f, f"{c}/accuracy", _h5.FLOAT32, [accuracy], before)
        _h5.append_column(f, f"{c}/loss", _h5.FLOAT32, [loss], before)
        _h5.append_column(f, f"{c}/epoch", _h5.INT64, [int(epoch)], before)
        _h5.append_column(f, f"{c}/step", _h5.INT64, [int(step)], before)
        self.flush()
        return accuracy, loss

    def log_train_probs(self, task, model, epoch, step, true_class_probs):
        """Appends a per-example training record (train_records): the model's probability
        of the true class of every train example (order of the task's train_labels) after
        an epoch. Named p_true for the teacher, q_true for a student."""
        f = self._open()
        t = self._task(task)
        mdl = self._model(task, model)
        m = f"/tasks/{task}/models/{model}"
        if t.train_examples is None:
            raise RecorderError(f"{self.path}: {m}/train_records: needs /tasks/{task}/train/labels "
                                f"(give train_labels to add_task)")
        values = _numpy(true_class_probs, np.float32).reshape(-1)
        if values.shape[0] != t.train_examples:
            raise RecorderError(f"{self.path}: {m}/train_records: {values.shape[0]} values for "
                                f"{t.train_examples} train examples")
        name = "p_true" if mdl.role == "teacher" else "q_true"
        r = f"{m}/train_records"
        before = _h5.rows_of(f, f"{r}/epoch")
        if f"{r}/{name}" not in f:
            _h5.create_dataset(f, f"{r}/{name}", _h5.FLOAT32, (0, t.train_examples), extendable=True,
                               chunk_rows=1, compress=t.train_examples > 0)
        ds = f[f"{r}/{name}"]
        ds.resize((before + 1, t.train_examples))
        if t.train_examples:
            ds[before] = values
        _h5.append_column(f, f"{r}/step", _h5.INT64, [int(step)], before)
        _h5.append_column(f, f"{r}/epoch", _h5.INT64, [int(epoch)], before)

    # ----- evaluation outputs ------------------------------------------------------------

    def eval_writer(self, task, model, attention_examples=None, pooling=None):
        """An EvalWriter that streams the model's eval outputs batch by batch, in the order
        of the task's eval examples: `w.add(logits, hidden_states=..., attentions=...)` per
        batch, then `w.close()` (flushes). Use it as a context manager."""
        self._open()
        mdl = self._model(task, model)
        if mdl.eval_writer is not None:
            raise RecorderError(f"{self.path}: /tasks/{task}/models/{model}/eval: an evaluation is already open")
        mdl.eval_writer = EvalWriter(self, task, model,
                                     self.attention_examples if attention_examples is None else attention_examples,
                                     pooling or self.pooling)
        return mdl.eval_writer

    def record_eval(self, task, model, logits, hidden_states=None, attentions=None, attention_mask=None,
                    classifier=None, attention_examples=None, pooling=None):
        """Records the final model's outputs on the whole eval split at once (written in
        blocks of 128 rows, then flushed):

        logits: [N, C]. hidden_states: a tuple of Lyr + 1 tensors (index 0 the embedding
        output), each [N, Len, D] (pooled over non-padding tokens, or the first token with
        pooling="cls"), [N, D] (already pooled) or [N, Ch, H, W] (feature maps: averaged
        over space); widths may differ per layer (narrower ones are zero-padded to the
        widest, as KDScope pads an MLP's layers). attentions: a tuple of Lyr tensors
        [N, H, Len, Len] of attention probabilities (text tasks; the first
        `attention_examples` rows are kept). attention_mask: [N, Len], 1 for real tokens
        (default: eval tokens != 0). classifier: the final nn.Linear (or a (weight, bias)
        pair) to store as classifier/weight and bias."""
        with self.eval_writer(task, model, attention_examples, pooling) as writer:
            n = _numpy_shape(logits)[0]
            for start in range(0, n, EVAL_BLOCK_ROWS):
                stop = min(n, start + EVAL_BLOCK_ROWS)
                writer.add(logits[start:stop],
                           hidden_states=None if hidden_states is None else [h[start:stop] for h in hidden_states],
                           attentions=None if attentions is None else [a[start:stop] for a in attentions],
                           attention_mask=None if attention_mask is None else attention_mask[start:stop])
            if classifier is not None:
                writer.classifier(classifier)

    def record_classifier(self, task, model, weight, bias=None):
        """classifier/weight [C, D] and bias [C] of the final linear layer (an nn.Linear may
        be given as `weight`)."""
        f = self._open()
        t = self._task(task)
        self._model(task, model)
        if bias is None and hasattr(weight, "weight"):  # an nn.Linear
            weight, bias = weight.weight, weight.bias
        elif bias is None and isinstance(weight, (tuple, list)) and len(weight) == 2:  # (weight, bias)
            weight, bias = weight
        c = f"/tasks/{task}/models/{model}/classifier"
        w = _numpy(weight, np.float32)
        if w.ndim != 2 or w.shape[0] != t.classes:
            raise RecorderError(f"{self.path}: {c}/weight: has shape {list(w.shape)}, expected [{t.classes}, D]")
        b = np.zeros(t.classes, np.float32) if bias is None else _numpy(bias, np.float32).reshape(-1)
        if b.shape[0] != t.classes:
            raise RecorderError(f"{self.path}: {c}/bias: {b.shape[0]} values for {t.classes} classes")
        for path, array in ((f"{c}/weight", w), (f"{c}/bias", b)):
            if path in f:
                del f[path]
            ds = _h5.create_dataset(f, path, _h5.FLOAT32, array.shape, chunk_rows=_h5.EVAL_CHUNK_ROWS,
                                    compress=True)
            ds[...] = array
        self.flush()

    # ----- flush and status --------------------------------------------------------------

    def flush(self):
        """Writes buffered log rows, then flushes the file to disk (HDF5 flush + fsync)."""
        self._open()
        self._write_pending()
        _h5.sync(self._f, self._fd)
        self._unflushed = 0
        self._last_flush = time.monotonic()

    def _incomplete(self):
        """What keeps the file from being a complete run, or None."""
        if not self._tasks:
            return "no task was recorded"
        for task in self._tasks.values():
            if not any(m.role == "teacher" for m in task.models.values()):
                return f"/tasks/{task.name} has no teacher"
            for mdl in task.models.values():
                if not mdl.evaluated:
                    return (f"/tasks/{task.name}/models/{mdl.name} has no complete eval/logits "
                            f"(call record_eval before closing)")
        return None

    def close(self, status="complete", message=""):
        """Sets the status ("complete", "failed", "cancelled") with its message, flushes and
        closes. A run claimed complete without a teacher or a model's eval outputs is
        recorded as "failed" (nothing is deleted) and RecorderError is raised."""
        if self._f is None:
            return
        if status not in STATUSES or status == "running":
            raise RecorderError(f"{self.path}: status {status!r} is not one of complete, cancelled, failed")
        problem = None
        for task in self._tasks.values():
            for mdl in task.models.values():
                if mdl.eval_writer is not None:
                    mdl.eval_writer._abandon()
        if status == "complete":
            problem = self._incomplete()
            if problem:
                status, message = "failed", f"{self.path}: incomplete run: {problem}"
        try:
            self._write_pending()
            _h5.set_str(self._f, "status", status)
            _h5.set_str(self._f, "status_message", "" if status == "complete" else message)
            _h5.sync(self._f, self._fd)
        finally:
            self._f.close()
            os.close(self._fd)
            self._f = None
            self._status = status
        if problem:
            raise RecorderError(message)

    @property
    def status(self):
        return self._status or "running"


def _numpy_shape(x):
    return tuple(x.shape) if hasattr(x, "shape") else np.asarray(x).shape


class EvalWriter:
    """Streams one model's eval outputs (RunRecorder.eval_writer). Datasets are created at
    their full size on the first batch (NaN until written), as KDScope does."""

    def __init__(self, recorder, task, model, attention_examples, pooling):
        if pooling not in ("mean", "cls"):
            raise RecorderError(f"{recorder.path}: pooling {pooling!r} is neither 'mean' nor 'cls'")
        self.rec = recorder
        self.task = recorder._task(task)
        self.model = recorder._model(task, model)
        self.m = f"/tasks/{task}/models/{model}"
        self.pooling = pooling
        self.attention_examples = min(int(attention_examples), self.task.examples)
        self.offset = 0
        self.created = False
        self.hidden_shape = None
        self.attention_shape = None
        f = recorder._f
        # An evaluation recorded again replaces the earlier one (RunWriter::removeEvalOutputs).
        for name in ("eval", "classifier"):
            if f"{self.m}/{name}" in f:
                del f[f"{self.m}/{name}"]
        self.model.evaluated = False

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self._abandon()
        return False

    def _fail(self, path, what):
        raise RecorderError(f"{self.rec.path}: {self.m}/{path}: {what}")

    def _pool(self, layer, start, rows, mask):
        """One layer's states for `rows` examples as [rows, width] float32."""
        x = _numpy(layer, np.float32)
        if x.shape[0] != rows:
            self._fail("eval/hidden", f"a hidden state of shape {list(x.shape)} for a batch of {rows}")
        if x.ndim == 2:
            return x
        if x.ndim == 4:  # feature maps [B, Ch, H, W]: global average over space
            return x.mean(axis=(2, 3), dtype=np.float64).astype(np.float32)
        if x.ndim != 3:
            self._fail("eval/hidden", f"a hidden state of rank {x.ndim} (expected [B, D], [B, Len, D] or "
                                      f"[B, Ch, H, W])")
        if self.pooling == "cls":
            return x[:, 0, :]
        if mask is None:
            self._fail("eval/hidden", "mean pooling of token states needs eval tokens or an attention_mask")
        if mask.shape != x.shape[:2]:
            self._fail("eval/hidden", f"attention mask of shape {list(mask.shape)} for token states of shape "
                                      f"{list(x.shape)}")
        weights = mask.astype(np.float64)
        counts = np.maximum(weights.sum(axis=1, keepdims=True), 1.0)
        return (np.einsum("bl,bld->bd", weights, x.astype(np.float64)) / counts).astype(np.float32)

    def add(self, logits, hidden_states=None, attentions=None, attention_mask=None):
        """The next batch of eval examples: logits [B, C]; hidden_states and attentions as
        in RunRecorder.record_eval, for the same B examples."""
        rec, f, t = self.rec, self.rec._open(), self.task
        z = _numpy(logits, np.float32)
        rows = z.shape[0] if z.ndim == 2 else -1
        if z.ndim != 2 or z.shape[1] != t.classes:
            self._fail("eval/logits", f"logits of shape {list(z.shape)}, expected [B, {t.classes}] (classes)")
        start = self.offset
        if start + rows > t.examples:
            self._fail("eval/logits", f"rows {start}..{start + rows} exceed the {t.examples} eval examples")
        mask = None
        if attention_mask is not None:
            mask = _numpy(attention_mask).astype(bool)
        elif t.tokens is not None:
            mask = t.tokens[start:start + rows] != 0
        pooled = None
        if hidden_states is not None:
            pooled = [self._pool(layer, start, rows, mask) for layer in hidden_states]
            if not pooled:
                self._fail("eval/hidden", "no hidden state given (Lyr + 1 layers, index 0 the embedding output)")
        att = None
        # Attention is kept for eval examples 0 .. n_att-1: a batch may give maps for all of
        # its rows or only for those it keeps.
        keep = max(0, min(rows, self.attention_examples - start))
        if attentions is not None and keep > 0:
            if t.kind != "text":
                self._fail("eval/attention", "attention needs a text task (eval_tokens)")
            att = [_numpy(a[:keep], np.float32) for a in attentions]
            if not att or any(a.ndim != 4 or a.shape[0] != keep for a in att):
                self._fail("eval/attention", f"expected Lyr tensors [{rows}, H, Len, Len] (or [{keep}, ...]: the "
                                             f"rows kept), got {[list(a.shape) for a in attentions]}")
        if not self.created:
            self._create(pooled, att)
        else:
            if (pooled is None) != (self.hidden_shape is None):
                self._fail("eval/hidden", "hidden states must be given with every batch or none")
            if (att is None) != (self.attention_shape is None) and start < self.attention_examples:
                self._fail("eval/attention", "attentions must be given with every batch or none")
        f[f"{self.m}/eval/logits"][start:start + rows] = z
        if pooled is not None:
            layers, width = self.hidden_shape
            if len(pooled) != layers or any(p.shape[1] > width for p in pooled):
                self._fail("eval/hidden", f"{len(pooled)} layers of widths {[p.shape[1] for p in pooled]}, but the "
                                          f"first batch gave {layers} layers of width {width}")
            block = np.zeros((rows, layers, width), np.float32)
            for index, p in enumerate(pooled):
                block[:, index, :p.shape[1]] = p
            f[f"{self.m}/eval/hidden"][start:start + rows] = block.astype(rec.activation_dtype)
        if att is not None:
            block = np.stack(att, axis=1)
            if block.shape[1:] != self.attention_shape:
                self._fail("eval/attention", f"a batch of shape {list(block.shape[1:])} per example, but the "
                                             f"first gave {list(self.attention_shape)}")
            f[f"{self.m}/eval/attention"][start:start + keep] = block.astype(rec.activation_dtype)
        self.offset += rows

    def _create(self, pooled, att):
        rec, f, t = self.rec, self.rec._f, self.task
        n, chunk = t.examples, _h5.EVAL_CHUNK_ROWS
        _h5.create_dataset(f, f"{self.m}/eval/logits", _h5.FLOAT32, (n, t.classes), chunk_rows=chunk, compress=True)
        if pooled is not None:
            width = max(p.shape[1] for p in pooled)
            if width == 0:
                self._fail("eval/hidden", "hidden states of width 0")
            self.hidden_shape = (len(pooled), width)
            ds = _h5.create_dataset(f, f"{self.m}/eval/hidden", rec.activation_dtype, (n, len(pooled), width),
                                    chunk_rows=chunk, compress=True)
            _h5.set_str(ds, "pooling", self.pooling)
            _h5.set_str(ds, "layer0", "embedding output")
        if att is not None:
            layers = len(att)
            heads, length, length2 = att[0].shape[1:]
            if any(a.shape[1:] != att[0].shape[1:] for a in att):
                self._fail("eval/attention", f"layers of different shapes {[list(a.shape) for a in att]}")
            if length != length2 or length != t.seq_len:
                self._fail("eval/attention", f"maps of {length} x {length2}, expected {t.seq_len} x {t.seq_len} "
                                             f"(columns of /tasks/{t.name}/eval/tokens)")
            if self.hidden_shape is not None and self.hidden_shape[0] != layers + 1:
                self._fail("eval/attention", f"{layers} layers, but eval/hidden has {self.hidden_shape[0]} entries "
                                             f"(layers + 1)")
            self.attention_shape = (layers, heads, length, length)
            _h5.create_dataset(f, f"{self.m}/eval/attention", rec.activation_dtype,
                               (self.attention_examples, layers, heads, length, length), chunk_rows=chunk,
                               compress=True)
        self.created = True

    def classifier(self, weight, bias=None):
        self.rec.record_classifier(self.task.name, self.model.name, weight, bias)

    def close(self):
        """Checks every eval example was written, then flushes (the model is evaluated)."""
        if self.model.eval_writer is not self:
            return
        self.model.eval_writer = None
        if self.offset != self.task.examples:
            self.rec.flush()
            self._fail("eval/logits", f"{self.offset} of {self.task.examples} eval examples were written "
                                      f"(rows never written read as NaN)")
        self.model.evaluated = True
        self.rec.flush()

    def _abandon(self):
        self.model.eval_writer = None
