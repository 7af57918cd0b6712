#!/usr/bin/env python3
"""Checks a KDScope run file against run format version 1 (docs/run-format.md).

Usage: /usr/bin/python3 check_run_file.py RUN.h5 [--any-width]

Checks every fixed path of the format and KDScope's documented additions: presence,
element type, rank, the shapes that other objects fix (logits rows = eval labels,
columns = num_classes, ...), attribute types and values, and for a "complete" run that
no eval output row was left unwritten (NaN, the fill value). Paths the format does not
name are allowed: the format may grow without a new version.

--any-width accepts any integer or float width, as the format's contract does ("integer",
"float"); without it the widths KDScope writes (int64, float32) are required.

Exit status: 0 the file conforms; 1 it does not (each problem printed on its own line,
starting with the object's path); 2 bad usage or the file cannot be opened as HDF5.
Runs with Debian's /usr/bin/python3 (python3-h5py, python3-numpy).
"""

import argparse
import json
import sys

import h5py
import numpy as np

FORMAT = "kdscope-run"
VERSION = 1
STATUSES = ("running", "complete", "cancelled", "failed")
ROLES = ("teacher", "student")
BLOCK_ROWS = 1024  # rows read at a time when scanning large datasets for unwritten rows


class Checker:
    def __init__(self, run, any_width):
        self.run = run
        self.any_width = any_width
        self.problems = []
        self.complete = False
        self.tasks_seen = 0
        self.models_seen = 0

    def problem(self, path, message):
        self.problems.append(f"{path}: {message}")

    # ----- attributes -------------------------------------------------------------------

    def attr(self, obj, name, kind):
        """Checks attribute `name` of `obj` is of `kind` (str, int, float, str_array);
        returns its value, or None after reporting a problem."""
        if name not in obj.attrs:
            self.problem(obj.name, f"attribute '{name}' is missing")
            return None
        stored = obj.attrs.get_id(name)
        dtype, shape = stored.dtype, stored.shape
        where = f"attribute '{name}'"
        if kind in ("str", "str_array"):
            info = h5py.check_string_dtype(dtype)
            if info is None:
                self.problem(obj.name, f"{where} is {dtype}, expected a string")
                return None
            if info.length is not None or info.encoding != "utf-8":
                self.problem(obj.name, f"{where} must be a variable-length UTF-8 string "
                                       f"(is {info.encoding}, length {info.length})")
                return None
            if kind == "str" and shape != ():
                self.problem(obj.name, f"{where} must be a scalar string, has shape {shape}")
                return None
            if kind == "str_array" and len(shape) != 1:
                self.problem(obj.name, f"{where} must be a 1-D string array, has shape {shape}")
                return None
            try:
                value = obj.attrs[name]
            except UnicodeDecodeError as error:
                self.problem(obj.name, f"{where} is not valid UTF-8: {error}")
                return None
            if kind == "str":
                return value
            return [str(v) for v in value]
        if shape not in ((), (1,)):
            self.problem(obj.name, f"{where} must be a single value, has shape {shape}")
            return None
        if kind == "int" and dtype.kind not in "iu":
            self.problem(obj.name, f"{where} is {dtype}, expected an integer")
            return None
        if kind == "float" and dtype.kind not in "iuf":
            self.problem(obj.name, f"{where} is {dtype}, expected a number")
            return None
        value = obj.attrs[name]
        return value.item() if hasattr(value, "item") else value

    def json_attr(self, obj, name):
        text = self.attr(obj, name, "str")
        if text is None:
            return None
        try:
            return json.loads(text)
        except ValueError as error:
            self.problem(obj.name, f"attribute '{name}' is not valid JSON: {error}")
            return None

    # ----- datasets ---------------------------------------------------------------------

    def dataset(self, path, kind, dims, required=True):
        """Checks the dataset at `path`: kind int / float / str, and shape `dims`, a list with
        one entry per dimension: None (any size) or (size, where that size comes from).
        Returns the dataset, or None when it is absent or wrong."""
        if path not in self.run:
            if required:
                self.problem(path, "is missing")
            return None
        obj = self.run[path]
        if not isinstance(obj, h5py.Dataset):
            self.problem(path, "is a group, expected a dataset")
            return None
        dtype = obj.dtype
        if kind == "str":
            info = h5py.check_string_dtype(dtype)
            if info is None or info.length is not None or info.encoding != "utf-8":
                self.problem(path, f"is {dtype}, expected variable-length UTF-8 strings")
                return None
        elif kind == "int":
            if dtype.kind not in "iu" or (not self.any_width and dtype != np.int64):
                self.problem(path, f"is {dtype}, expected {'integers' if self.any_width else 'int64'}")
                return None
        elif kind == "float":
            if dtype.kind != "f" or (not self.any_width and dtype != np.float32):
                self.problem(path, f"is {dtype}, expected {'floats' if self.any_width else 'float32'}")
                return None
        elif kind == "activation":  # recording.float16 stores activations in half precision
            if dtype.kind != "f" or (not self.any_width and dtype not in (np.float32, np.float16)):
                self.problem(path, f"is {dtype}, expected {'floats' if self.any_width else 'float32 or float16'}")
                return None
        if len(obj.shape) != len(dims):
            self.problem(path, f"has shape {obj.shape} of rank {len(obj.shape)}, expected rank {len(dims)}")
            return None
        for axis, expected in enumerate(dims):
            if expected is not None and obj.shape[axis] != expected[0]:
                name = "rows" if axis == 0 else f"dimension {axis}"
                self.problem(path, f"has shape {obj.shape}: {name} {obj.shape[axis]}, "
                                   f"expected {expected[0]} ({expected[1]})")
                return None
        return obj

    def strings_decode(self, ds):
        try:
            ds.asstr()[...]
        except UnicodeDecodeError as error:
            self.problem(ds.name, f"holds a string that is not valid UTF-8: {error}")

    def no_unwritten_rows(self, ds):
        """In a complete run every eval output row was written: none is all NaN (the fill
        value of rows never written)."""
        if not self.complete or ds.shape[0] == 0:
            return
        for start in range(0, ds.shape[0], BLOCK_ROWS):
            block = ds[start:start + BLOCK_ROWS].reshape(min(BLOCK_ROWS, ds.shape[0] - start), -1)
            unwritten = np.flatnonzero(np.isnan(block).all(axis=1))
            if unwritten.size:
                self.problem(ds.name, f"row {start + unwritten[0]} was never written (all NaN) "
                                      f"in a complete run ({unwritten.size} such rows in rows "
                                      f"{start}..{start + block.shape[0]})")
                return

    # ----- structure --------------------------------------------------------------------

    def check(self):
        root = self.run
        fmt = self.attr(root, "format", "str")
        if fmt is not None and fmt != FORMAT:
            self.problem("/", f"attribute 'format' is '{fmt}', expected '{FORMAT}'")
            return
        version = self.attr(root, "format_version", "int")
        if version is not None and version != VERSION:
            self.problem("/", f"format_version {version}: this checker knows version {VERSION}")
            return
        status = self.attr(root, "status", "str")
        if status is not None and status not in STATUSES:
            self.problem("/", f"attribute 'status' is '{status}', expected one of {', '.join(STATUSES)}")
        self.complete = status == "complete"
        message = self.attr(root, "status_message", "str")
        if self.complete and message:
            self.problem("/", f"attribute 'status_message' is '{message}', expected empty when complete")
        self.json_attr(root, "job")
        kdscope_version = self.attr(root, "kdscope_version", "str")
        if kdscope_version == "":
            self.problem("/", "attribute 'kdscope_version' is empty")
        if "world_size" in root.attrs:  # optional (docs/distributed.md); absent in older runs
            world_size = self.attr(root, "world_size", "int")
            if world_size is not None and world_size < 1:
                self.problem("/", f"attribute 'world_size' is {world_size}, not a process count")
        if "tasks" not in root or not isinstance(root["tasks"], h5py.Group):
            self.problem("/tasks", "is missing (a group)")
            return
        if self.complete and len(root["tasks"]) == 0:
            self.problem("/tasks", "has no task in a complete run")
        for task in root["tasks"].values():
            if isinstance(task, h5py.Group):
                self.check_task(task)
            else:
                self.problem(task.name, "is a dataset, expected a task group")

    def check_task(self, task):
        t = task.name
        self.tasks_seen += 1
        self.ntrain_dim = None
        classes = self.attr(task, "num_classes", "int")
        if classes is not None and classes < 1:
            self.problem(t, f"attribute 'num_classes' is {classes}, expected at least 1")
            classes = None
        class_names = self.attr(task, "class_names", "str_array")
        if classes is not None and class_names is not None and len(class_names) != classes:
            self.problem(t, f"attribute 'class_names' has {len(class_names)} names, num_classes is {classes}")
        kind = self.attr(task, "kind", "str")
        if kind is not None and kind not in ("text", "vector"):
            self.problem(t, f"attribute 'kind' is '{kind}', expected 'text' or 'vector'")
        c_dim = (classes, f"num_classes of {t}") if classes is not None else None

        labels = self.dataset(f"{t}/eval/labels", "int", [None])
        n_dim = (labels.shape[0], f"rows of {t}/eval/labels") if labels is not None else None
        if labels is not None and classes is not None and labels.shape[0]:
            values = labels[...]
            bad = np.flatnonzero((values < 0) | (values >= classes))
            if bad.size:
                self.problem(labels.name, f"label {values[bad[0]]} of example {bad[0]} is outside 0..{classes - 1}")

        seq_len = None
        if kind == "text":
            vocab = self.dataset(f"{t}/vocab", "str", [None])
            if vocab is not None:
                self.strings_decode(vocab)
            tokens = self.dataset(f"{t}/eval/tokens", "int", [n_dim, None])
            if tokens is not None:
                seq_len = tokens.shape[1]
                if vocab is not None and tokens.size:
                    ids = tokens[...]
                    if ids.min() < 0 or ids.max() >= vocab.shape[0]:
                        self.problem(tokens.name, f"token ids span {ids.min()}..{ids.max()}, outside the "
                                                  f"vocabulary of {vocab.shape[0]} ({t}/vocab)")
            text = self.dataset(f"{t}/eval/text", "str", [n_dim], required=False)
            if text is not None:
                self.strings_decode(text)
        elif kind == "vector":
            for path in (f"{t}/eval/tokens", f"{t}/vocab"):
                if path in self.run:
                    self.problem(path, "exists, but a vector task has no tokens")
        group = self.dataset(f"{t}/eval/group", "str", [n_dim], required=False)
        if group is not None:
            self.strings_decode(group)
        self.dataset(f"{t}/eval/source_index", "int", [n_dim], required=False)
        supers = self.dataset(f"{t}/super_class_of", "int", [c_dim], required=False)
        if supers is not None and supers.size and supers[...].min() < 0:
            self.problem(supers.name, "holds a negative super-class")
        train_labels = self.dataset(f"{t}/train/labels", "int", [None], required=False)
        ntrain_dim = None
        if train_labels is not None:
            ntrain_dim = (train_labels.shape[0], f"rows of {t}/train/labels")
            if classes is not None and train_labels.shape[0]:
                values = train_labels[...]
                bad = np.flatnonzero((values < 0) | (values >= classes))
                if bad.size:
                    self.problem(train_labels.name, f"label {values[bad[0]]} of example {bad[0]} is outside "
                                                    f"0..{classes - 1}")
        self.dataset(f"{t}/train/source_index", "int", [ntrain_dim], required=False)
        self.ntrain_dim = ntrain_dim

        if "models" not in task:
            self.problem(f"{t}/models", "is missing (a group)")
            return
        roles = {}
        hidden_shapes = {}
        for model_name, model in task["models"].items():
            if not isinstance(model, h5py.Group):
                self.problem(model.name, "is a dataset, expected a model group")
                continue
            roles[model_name] = self.check_model(model, n_dim, c_dim, seq_len, kind, hidden_shapes)
        if self.complete and "teacher" not in roles.values():
            self.problem(f"{t}/models", "has no model with role 'teacher' in a complete run")
        if "analysis" in task:
            self.check_analysis(task["analysis"], n_dim, hidden_shapes)

    def check_model(self, model, n_dim, c_dim, seq_len, kind, hidden_shapes):
        m = model.name
        self.models_seen += 1
        role = self.attr(model, "role", "str")
        if role is not None and role not in ROLES:
            self.problem(m, f"attribute 'role' is '{role}', expected 'teacher' or 'student'")
        self.json_attr(model, "architecture")
        self.json_attr(model, "objective")
        count = self.attr(model, "parameter_count", "int")
        if count is not None and count < 0:
            self.problem(m, f"attribute 'parameter_count' is {count}")

        if "train" in model:
            step = self.dataset(f"{m}/train/step", "int", [None])
            s_dim = (step.shape[0], f"rows of {m}/train/step") if step is not None else None
            self.dataset(f"{m}/train/loss", "float", [s_dim])
            if step is not None and step.shape[0] > 1 and np.any(np.diff(step[...]) <= 0):
                self.problem(step.name, "steps do not increase (a step logged twice?)")
            if "terms" in model["train"]:
                for term in model["train/terms"]:
                    self.dataset(f"{m}/train/terms/{term}", "float", [s_dim])
        if "eval_curve" in model:
            step = self.dataset(f"{m}/eval_curve/step", "int", [None])
            e_dim = (step.shape[0], f"rows of {m}/eval_curve/step") if step is not None else None
            self.dataset(f"{m}/eval_curve/epoch", "int", [e_dim])
            accuracy = self.dataset(f"{m}/eval_curve/accuracy", "float", [e_dim])
            self.dataset(f"{m}/eval_curve/loss", "float", [e_dim])
            if accuracy is not None and accuracy.size:
                values = accuracy[...]
                if np.any((values < 0) | (values > 1)):
                    self.problem(accuracy.name, "holds values outside 0..1 (accuracy is a fraction)")

        logits = self.dataset(f"{m}/eval/logits", "float", [n_dim, c_dim], required=self.complete)
        if logits is not None:
            self.no_unwritten_rows(logits)
        hidden = self.dataset(f"{m}/eval/hidden", "activation", [n_dim, None, None], required=False)
        if hidden is not None:
            hidden_shapes[model.name.rsplit("/", 1)[-1]] = hidden.shape
            pooling = self.attr(hidden, "pooling", "str")
            if pooling is not None and pooling not in ("mean", "cls"):
                self.problem(hidden.name, f"attribute 'pooling' is '{pooling}', expected 'mean' or 'cls'")
            self.attr(hidden, "layer0", "str")
            if hidden.shape[1] < 1:
                self.problem(hidden.name, "has no layer (dimension 1 is Lyr + 1)")
            self.no_unwritten_rows(hidden)
        if f"{m}/eval/attention" in self.run:
            if kind == "vector":
                self.problem(f"{m}/eval/attention", "exists, but a vector task has no attention")
            len_dim = (seq_len, "columns of eval/tokens") if seq_len is not None else None
            lyr_dim = (hidden.shape[1] - 1, f"dimension 1 of {m}/eval/hidden minus 1") if hidden is not None else None
            attention = self.dataset(f"{m}/eval/attention", "activation", [None, lyr_dim, None, len_dim, len_dim])
            if attention is not None:
                if n_dim is not None and attention.shape[0] > n_dim[0]:
                    self.problem(attention.name, f"keeps {attention.shape[0]} examples, more than the "
                                                 f"{n_dim[0]} eval examples")
                self.no_unwritten_rows(attention)
        if f"{m}/eval/token_hidden" in self.run:
            if kind == "vector":
                self.problem(f"{m}/eval/token_hidden", "exists, but a vector task has no tokens")
            len_dim = (seq_len, "columns of eval/tokens") if seq_len is not None else None
            l1_dim = (hidden.shape[1], f"dimension 1 of {m}/eval/hidden") if hidden is not None else None
            d_dim = (hidden.shape[2], f"dimension 2 of {m}/eval/hidden") if hidden is not None else None
            token_hidden = self.dataset(f"{m}/eval/token_hidden", "activation", [None, l1_dim, len_dim, d_dim])
            if token_hidden is not None:
                if n_dim is not None and token_hidden.shape[0] > n_dim[0]:
                    self.problem(token_hidden.name, f"keeps {token_hidden.shape[0]} examples, more than the "
                                                    f"{n_dim[0]} eval examples")
                self.attr(token_hidden, "layer0", "str")
                self.no_unwritten_rows(token_hidden)
        if "train_records" in model:
            self.check_train_records(model)
        if "classifier" in model:
            weight = self.dataset(f"{m}/classifier/weight", "float", [c_dim, None])
            self.dataset(f"{m}/classifier/bias", "float", [c_dim])
            if weight is not None and hidden is not None and weight.shape[1] != hidden.shape[2]:
                # Allowed (a classifier may sit on a projection), but worth knowing in CI.
                print(f"note: {weight.name}: width {weight.shape[1]} differs from eval/hidden's "
                      f"{hidden.shape[2]}", file=sys.stderr)
        return role

    def check_train_records(self, model):
        """train_records: epoch and step [E], and p_true (teacher) or q_true (student)
        [E, Ntrain], the probability of each train example's true class after each epoch."""
        r = f"{model.name}/train_records"
        epoch = self.dataset(f"{r}/epoch", "int", [None])
        e_dim = (epoch.shape[0], f"rows of {r}/epoch") if epoch is not None else None
        self.dataset(f"{r}/step", "int", [e_dim])
        names = [name for name in ("p_true", "q_true") if name in model["train_records"]]
        if len(names) != 1:
            self.problem(r, f"holds {names or 'neither p_true nor q_true'}, expected exactly one of them")
            return
        expected = "p_true" if model.attrs.get("role") == "teacher" else "q_true"
        if names[0] != expected:
            self.problem(f"{r}/{names[0]}", f"is named for the other role, expected {expected}")
        if self.ntrain_dim is None:
            self.problem(r, "exists, but the task has no train/labels")
        values = self.dataset(f"{r}/{names[0]}", "float", [e_dim, self.ntrain_dim])
        if values is not None and values.size:
            block = values[...]
            finite = block[~np.isnan(block)]
            if finite.size and (finite.min() < 0 or finite.max() > 1):
                self.problem(values.name, "holds values outside 0..1 (probabilities)")
            if self.complete and np.isnan(block).any():
                self.problem(values.name, "has unwritten (NaN) entries in a complete run")
        if epoch is not None and epoch.shape[0] > 1 and np.any(np.diff(epoch[...]) <= 0):
            self.problem(epoch.name, "epochs do not increase (a record kept twice?)")

    def check_analysis(self, analysis, n_dim, hidden_shapes):
        """/tasks/<task>/analysis (written by `kdscope analyze`): light checks of the paths
        RUN-FORMAT.md fixes."""
        for name, group in analysis.items():
            if not isinstance(group, h5py.Group):
                continue
            a = group.name
            if "cka" in group:
                teacher = hidden_shapes.get("teacher")
                student = hidden_shapes.get(name)
                dims = [(teacher[1], "layers + 1 of the teacher's eval/hidden") if teacher else None,
                        (student[1], f"layers + 1 of {name}'s eval/hidden") if student else None]
                self.dataset(f"{a}/cka", "float", dims)
            if "grad_rescale" in group:
                self.dataset(f"{a}/grad_rescale", "float", [n_dim])
            if "head_importance" in group:
                self.dataset(f"{a}/head_importance", "float", [None, None])


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="the run file (.h5)")
    parser.add_argument("--any-width", action="store_true",
                        help="accept any integer or float width, not only int64 and float32")
    args = parser.parse_args(argv)
    try:
        run = h5py.File(args.run, "r")
    except (OSError, ValueError) as error:
        print(f"{args.run}: cannot open as HDF5: {error}", file=sys.stderr)
        return 2
    with run:
        checker = Checker(run, args.any_width)
        checker.check()
    if checker.problems:
        print(f"{args.run}: does not conform to run format version {VERSION} "
              f"({len(checker.problems)} problems):")
        for problem in checker.problems:
            print(f"  {problem}")
        return 1
    print(f"{args.run}: conforms to run format version {VERSION} "
          f"({checker.tasks_seen} tasks, {checker.models_seen} models)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
