#!/usr/bin/python3
"""Per-operator self time from LibTorch profiler traces (chrome://tracing JSON, as written by
`bench_step --profile` and `distill_step.py --profile`), side by side.

    /usr/bin/python3 bench/profile_table.py NAME=TRACE.json [NAME=TRACE.json ...] [--top 20]

An operator's self time is its duration minus that of the operators it called (events nested
inside it on the same thread). Prints a Markdown table of each trace's top operators by self
time: milliseconds over the whole trace and share of the trace's total self time, and the
number of calls, so two runs of the same step (C++ and Python, fp32 and bf16) can be compared
per kernel."""
import collections
import json
import sys


def self_times(path):
    with open(path) as f:
        data = json.load(f)
    events = data["traceEvents"] if isinstance(data, dict) else data
    by_thread = collections.defaultdict(list)
    for e in events:
        if e.get("ph") == "X" and "dur" in e:
            by_thread[(e.get("pid"), e.get("tid"))].append(e)
    total = collections.Counter()
    calls = collections.Counter()
    for evs in by_thread.values():
        evs.sort(key=lambda e: (e["ts"], -e["dur"]))
        stack = []  # [event, children's time]
        def close(item):
            ev, child = item
            total[ev["name"]] += ev["dur"] - child
            calls[ev["name"]] += 1
            if stack:
                stack[-1][1] += ev["dur"]
        for e in evs:
            while stack and e["ts"] >= stack[-1][0]["ts"] + stack[-1][0]["dur"]:
                close(stack.pop())
            stack.append([e, 0.0])
        while stack:
            close(stack.pop())
    return total, calls


def main():
    top = 20
    args = sys.argv[1:]
    if "--top" in args:
        i = args.index("--top")
        top = int(args[i + 1])
        del args[i:i + 2]
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    runs = []
    for a in args:
        name, _, path = a.partition("=")
        runs.append((name, *self_times(path)))
    names = collections.Counter()
    for _, t, _ in runs:
        s = sum(t.values())
        for k, v in t.items():
            names[k] = max(names[k], v / s)
    header = "| operator | " + " | ".join(f"{n} ms (share, calls)" for n, _, _ in runs) + " |"
    print(header)
    print("|---|" + "---:|" * len(runs))
    for op, _ in names.most_common(top):
        cells = []
        for _, t, c in runs:
            s = sum(t.values())
            cells.append(f"{t[op] / 1000:.1f} ({100 * t[op] / s:.1f}%, {c[op]})" if op in t else "-")
        print(f"| `{op}` | " + " | ".join(cells) + " |")
    print("| total self time | " + " | ".join(f"{sum(t.values()) / 1000:.1f}" for _, t, _ in runs) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
