#!/usr/bin/env bash
# `kdscope analyze` through the real executable: exit codes (0 done, 2 bad input), results in
# the run file as h5py sees them, and `kdscope info` showing the headline numbers.
#   analyze_cli.sh KDSCOPE PYTHON SOURCE_DIR WORK_DIR
set -euo pipefail
KDSCOPE="$1"
PYTHON="$2"
SOURCE="$3"
WORK="$4"
rm -rf "$WORK"
mkdir -p "$WORK"
cat >"$WORK/job.json" <<'JSON'
{"name": "analyze-cli", "seed": 4,
 "tasks": [{"name": "synthetic_hierarchy", "super_classes": 2, "classes_per_super": 2, "dim": 8, "examples_per_class": 40}],
 "teacher": {"architecture": {"type": "mlp", "hidden": [16]}, "training": {"epochs": 2, "batch_size": 16}},
 "students": [{"name": "kd", "architecture": {"type": "mlp", "hidden": [8]}, "training": {"epochs": 2, "batch_size": 16},
               "objective": {"lambda": 0.5, "temperature": 2.0}}],
 "knowledge_controls": {"architecture": {"type": "mlp", "hidden": [8]}, "training": {"epochs": 2, "batch_size": 16}},
 "analyze": false}
JSON
fail() { echo "FAIL: $*" >&2; exit 1; }
"$KDSCOPE" run "$WORK/job.json" --out "$WORK/run" >/dev/null 2>&1 || fail "kdscope run"
RUN="$WORK/run/run.h5"
"$PYTHON" - "$RUN" <<'PY' || fail "the job (analyze: false) should not have analysed its run"
import sys, h5py
sys.exit(1 if "analysis" in h5py.File(sys.argv[1], "r")["tasks/synthetic_hierarchy"] else 0)
PY
"$KDSCOPE" analyze "$RUN" --threads 1 --blas-threads 1 2>"$WORK/analyze.log" || { cat "$WORK/analyze.log" >&2; fail "kdscope analyze exit $?"; }
grep -q "analysis complete" "$WORK/analyze.log" || fail "no progress output"
"$PYTHON" "$SOURCE/tests/python/check_run_file.py" "$RUN" || fail "check_run_file.py after analysis"
"$PYTHON" - "$RUN" <<'PY' || fail "analysis results as h5py reads them"
import sys, h5py, numpy as np
a = h5py.File(sys.argv[1], "r")["tasks/synthetic_hierarchy/analysis"]
assert a.attrs["status"] == "complete", a.attrs["status"]
assert a["kd/cka"].shape == (2, 2) and a["kd/cka"].dtype == np.float32
assert a["kd/grad_rescale"].shape == a["teacher/true_class_probability"].shape
k = a["knowledge"].attrs
assert list(k["students"]) == ["ctl-ce", "ctl-ls", "ctl-kdpt", "ctl-kd"]
assert k["universe_examples"] + k["instance_examples"] + k["domain_examples"] == k["total_examples"]
# The 95% intervals, paired tests and loss pattern (docs/statistics.md): the estimate inside
# its interval, the counts adding up, the bootstrap recorded.
i = a["kd/intervals"].attrs
assert i["accuracy"] == a["kd"].attrs["accuracy"], (i["accuracy"], a["kd"].attrs["accuracy"])
assert i["accuracy_lo"] <= i["accuracy"] <= i["accuracy_hi"]
assert i["resamples"] == 2000 and i["seed"] == 14, (i["resamples"], i["seed"])
p = a["kd/paired/teacher"].attrs
assert p["only_this"] + p["only_other"] + p["both_right"] + p["both_wrong"] == p["examples"]
assert 0 < p["mcnemar_p"] <= 1
assert set(a["kd/paired"]) == {"teacher", "ctl-ce", "ctl-ls", "ctl-kdpt", "ctl-kd"}, list(a["kd/paired"])
lp = a["kd/loss_pattern"].attrs
assert lp["lost"] + lp["rest"] == lp["examples"]
PY
"$KDSCOPE" info "$RUN" >"$WORK/info.txt" || fail "kdscope info"
grep -q "knowledge levels (ctl-ce, ctl-ls, ctl-kdpt, ctl-kd)" "$WORK/info.txt" || fail "info without knowledge levels"
grep -q "agreement" "$WORK/info.txt" || fail "info without fidelity"
grep -q "95% intervals: percentile bootstrap over the" "$WORK/info.txt" || fail "info without intervals"
grep -q "kd - teacher: .*McNemar p = " "$WORK/info.txt" || fail "info without the paired test against the teacher"
grep -q "loss pattern of kd: " "$WORK/info.txt" || fail "info without the loss pattern"
set +e
echo "not a run file" >"$WORK/bad.h5"
"$KDSCOPE" analyze "$WORK/bad.h5" 2>"$WORK/bad.log"; code=$?
[ "$code" -eq 2 ] || fail "a bad file gave exit $code, not 2"
grep -q "bad.h5" "$WORK/bad.log" || fail "the message does not name the file"
"$KDSCOPE" analyze "$RUN" --only nonsense 2>/dev/null; code=$?
[ "$code" -eq 2 ] || fail "an unknown analysis gave exit $code, not 2"
"$KDSCOPE" analyze "$RUN" --only cka,task 2>/dev/null; code=$?
[ "$code" -eq 0 ] || fail "--only cka,task gave exit $code"
"$KDSCOPE" analyze "$RUN" --only task --resamples 50 2>/dev/null; code=$?
[ "$code" -eq 2 ] || fail "--resamples 50 gave exit $code, not 2"
echo "analyze_cli: ok"
