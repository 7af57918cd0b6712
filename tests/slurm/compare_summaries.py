#!/usr/bin/env python3
"""Compares two study summaries (study_summary.json): the one-process `kdscope study` and the
same study run unit by unit (teacher job, one process per cell, merge).

Both runs go through the same code for each unit (core::runJob with the same job and seeds)
on this machine, with the same kernels and the same thread settings (--threads 1
--blas-threads 1), which docs/architecture.md ("Determinism") promises to be bit-identical:
so the summaries must be equal exactly, every accuracy, loss and term, not within a
tolerance. Only what names the run differs by design: nothing here (run_file paths are
relative to each study's folder). On a mismatch every differing value is printed with the
size of the difference.

Usage: compare_summaries.py LOCAL.json ARRAY.json --cells N
"""
import argparse
import json
import math
import sys


def walk(a, b, path, out):
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                out.append(f"{path}.{key}: only in {'the array run' if key not in a else 'the one-process run'}")
            else:
                walk(a[key], b[key], f"{path}.{key}", out)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{path}: {len(a)} entries against {len(b)}")
        for i, (x, y) in enumerate(zip(a, b)):
            walk(x, y, f"{path}[{i}]", out)
    elif isinstance(a, float) and isinstance(b, float) and not (math.isnan(a) and math.isnan(b)):
        if a != b:
            out.append(f"{path}: {a!r} against {b!r} (difference {abs(a - b):.3g})")
    elif a != b:
        out.append(f"{path}: {a!r} against {b!r}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("local")
    parser.add_argument("array")
    parser.add_argument("--cells", type=int, required=True)
    args = parser.parse_args()
    with open(args.local, encoding="utf-8") as f:
        local = json.load(f)
    with open(args.array, encoding="utf-8") as f:
        array = json.load(f)
    problems = []
    for name, s in (("one-process", local), ("array", array)):
        if s.get("format") != "kdscope-study-summary" or s.get("status") != "complete":
            problems.append(f"the {name} summary is not a complete study summary (status {s.get('status')!r})")
        if len(s.get("cells", [])) != args.cells:
            problems.append(f"the {name} summary has {len(s.get('cells', []))} cells, expected {args.cells}")
        for cell in s.get("cells", []):
            for task, r in cell.get("tasks", {}).items():
                if r.get("student_accuracy") is None or r.get("teacher_accuracy") is None:
                    problems.append(f"the {name} summary has no accuracy for cell {cell['name']}, task {task}")
    walk(local, array, "summary", problems)
    if problems:
        print("summaries differ:", file=sys.stderr)
        for p in problems:
            print("  " + p, file=sys.stderr)
        return 1
    cells = local["cells"]
    print(f"summaries equal: {len(cells)} cells x {len(local['tasks'])} task(s), every value identical")
    for cell in cells:
        for task, r in cell["tasks"].items():
            print(f"  {cell['name']:>16} {task}: teacher {r['teacher_accuracy']:.4f} student "
                  f"{r['student_accuracy']:.4f} gap {r['gap']:+.4f} final loss {r['final_loss']:.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
