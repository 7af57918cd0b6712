#!/usr/bin/python3
"""Summary of a fuzz campaign (bench/fuzz.sh): fuzz_summary.py WORK_DIR, markdown on stdout."""
import collections
import glob
import os
import re
import statistics
import sys

OUTCOMES = ["accepted", "refused", "failed", "unnamed", "crash", "hang"]
RUN_KINDS = ["truncate", "bitflip", "lying_dims", "wrong_shape", "wrong_type", "delete", "link_cycle",
             "lying_values", "mixed"]
JOB_KINDS = ["wrong_type", "missing_key", "extra_key", "huge_number", "negative", "deep_nesting",
             "invalid_utf8", "huge_string", "syntax", "mixed"]


def rows(pattern):
    out = []
    for path in sorted(glob.glob(pattern)):
        with open(path, errors="replace") as fh:
            for line in fh:
                f = line.rstrip("\n").split("\t")
                if len(f) >= 9:
                    out.append({"path": f[0], "kind": f[1], "consumer": f[2], "outcome": f[3],
                                "seconds": float(f[4]), "rss": int(f[5]), "pid": f[6], "detail": f[7],
                                "message": f[8]})
    return out


def table(records, kinds, title):
    counts = collections.Counter((r["kind"], r["outcome"]) for r in records)
    print(f"\n{title}\n")
    print("| kind | files | " + " | ".join(OUTCOMES) + " |")
    print("|---|---:|" + "---:|" * len(OUTCOMES))
    for k in kinds + ["**all**"]:
        sel = [r for r in records if k == "**all**" or r["kind"] == k]
        if not sel:
            continue
        cells = [str(sum(1 for r in sel if r["outcome"] == o)) for o in OUTCOMES]
        print(f"| {k} | {len(sel)} | " + " | ".join(cells) + " |")


def template(message, path):
    m = message.replace(path + ".analyze.h5", "FILE").replace(path, "FILE")
    m = re.sub(r"\(HDF5: .*", "(HDF5: ...)", m)
    m = re.sub(r"/tasks/[^ :]+", "/OBJECT", m)
    m = re.sub(r"'[^']*'", "'X'", m)
    m = re.sub(r"\d+", "N", m)
    return m[:160]


def names_object(message, path):
    """After 'FILE: ' an HDF5 object path, an attribute, or a file-level reason."""
    at = message.find(path)
    rest = message[at + len(path):] if at >= 0 else message
    rest = rest.replace(".analyze.h5", "", 1)
    if re.search(r"(^|[ :(])/[A-Za-z_]", rest) or "attribute" in rest:
        return "object"
    return "file"


def main():
    work = sys.argv[1]
    runs = rows(os.path.join(work, "runs", "c*", "out.tsv"))
    jobs = rows(os.path.join(work, "jobs", "c*", "out.tsv"))
    files = len({r["path"] for r in runs})
    print(f"# Fuzz campaign: {work}\n")
    print(f"{files} corrupted run files, {len(runs)} consumer runs; {len(jobs)} job files.")
    for consumer in ["info", "window", "analyze"]:
        sel = [r for r in runs if r["consumer"] == consumer]
        if sel:
            table(sel, RUN_KINDS, f"### Run files through `{consumer}`")
            secs = [r["seconds"] for r in sel]
            print(f"\nseconds per file: median {statistics.median(secs):.3f}, max {max(secs):.2f}; "
                  f"peak resident size max {max(r['rss'] for r in sel)} MB")
    worst = {}
    rank = {o: i for i, o in enumerate(OUTCOMES)}
    for r in runs:
        w = worst.get(r["path"])
        if w is None or rank[r["outcome"]] > rank[w["outcome"]]:
            worst[r["path"]] = r
    if worst:
        table(list(worst.values()), RUN_KINDS, "### Run files, worst outcome of the three consumers per file")
    named = [r for r in runs if r["outcome"] in ("refused", "failed")]
    if named:
        kinds = collections.Counter(names_object(r["message"], r["path"]) for r in named)
        print(f"\nRefusals and failures naming the file: {len(named)}; of them naming an HDF5 object or "
              f"attribute: {kinds['object']}, a file-level reason (not HDF5, truncated, HDF5 crashed in "
              f"the probe, ...): {kinds['file']}")
        print("\nCommonest refusal messages (FILE, OBJECT, N, 'X' stand for the varying parts):\n")
        for (consumer, t), n in collections.Counter(
                (r["consumer"], template(r["message"], r["path"])) for r in named).most_common(25):
            print(f"- {n} x {consumer}: `{t}`")
    bad = [r for r in runs if r["outcome"] in ("crash", "hang", "unnamed")]
    if bad:
        print("\n### Crashes, hangs and unnamed refusals\n")
        for r in bad[:60]:
            print(f"- {r['path']} ({r['kind']}) {r['consumer']}: {r['outcome']}: {r['message'][:300]}")
    chunks = []
    for d in glob.glob(os.path.join(work, "runs", "done.*")):
        chunks.append([int(x) for x in open(d).read().split()])
    if chunks:
        print(f"\nWall time: made in {sum(c[1] for c in chunks)} s, run in {sum(c[2] for c in chunks)} s "
              f"({len(chunks)} chunks)")

    exe = os.path.join(work, "runs", "exe.tsv")
    if os.path.exists(exe):
        byfile = {(r["path"], r["consumer"]): r for r in runs}
        agree, total, differ = 0, 0, []
        expect = {"accepted": "0", "refused": "2", "failed": "1"}
        for line in open(exe, errors="replace"):
            f, kind, cmd, code, msg = (line.rstrip("\n").split("\t") + [""] * 5)[:5]
            h = byfile.get((f, cmd))
            if h is None:
                continue
            total += 1
            if expect.get(h["outcome"]) == code:
                agree += 1
            else:
                differ.append(f"{f} {cmd}: harness {h['outcome']}, exit code {code}: {msg[:200]}")
        print(f"\n### Real executables on a sample\n\n{agree} of {total} (file, command) pairs: the exit code of "
              f"`kdscope info` / `kdscope analyze` matches the harness (accepted 0, refused 2, failed 1).")
        for d in differ[:20]:
            print(f"- {d}")

    if jobs:
        table(jobs, JOB_KINDS, "### Job files through `loadJobFile`")
        match = collections.Counter(r["detail"].split("; path ")[-1] for r in jobs if r["outcome"] == "refused")
        print(f"\nRefusals with an issue naming the mutated JSON path (or its parent or child): {match['yes']} "
              f"of {sum(match.values())}")
        longest = [int(m.group(1)) for r in jobs for m in [re.search(r"longest (\d+) bytes", r["detail"])] if m]
        if longest:
            print(f"\nLongest issue message: {max(longest)} bytes")
        secs = sorted(jobs, key=lambda r: -r["seconds"])
        print(f"\nseconds per file: median {statistics.median(r['seconds'] for r in jobs):.3f}, slowest:")
        for r in secs[:5]:
            print(f"- {r['seconds']:.2f} s, {r['rss']} MB: {r['kind']} {os.path.basename(r['path'])}: "
                  f"{r['message'][:150]}")
        nomatch = [r for r in jobs if r["outcome"] == "refused" and r["detail"].endswith("path no")]
        if nomatch:
            print("\nRefusals whose issues do not name the mutated path (first 15):\n")
            for r in nomatch[:15]:
                print(f"- {r['kind']} {os.path.basename(r['path'])}: {r['message'][:250]}")
        accepted = [r for r in jobs if r["outcome"] == "accepted"]
        print(f"\nAccepted (the mutation left a valid job): {len(accepted)}, by kind "
              f"{dict(collections.Counter(r['kind'] for r in accepted))}")
        badj = [r for r in jobs if r["outcome"] in ("crash", "hang", "unnamed")]
        for r in badj[:30]:
            print(f"- {r['path']} ({r['kind']}): {r['outcome']}: {r['message'][:300]}")

    reports = sorted(glob.glob(os.path.join(work, "sanitizer", "*")))
    if reports:
        print(f"\n### Sanitizer reports: {len(reports)} files\n")
        consumer_pids = {r["pid"]: r for r in runs + jobs}
        kinds = collections.Counter()
        examples = {}
        for path in reports:
            text = open(path, errors="replace").read()
            pid = path.rsplit(".", 1)[-1]
            m = re.search(r"(ERROR: AddressSanitizer: [\w-]+|runtime error: [^\n]{0,80}|ERROR: LeakSanitizer)", text)
            what = m.group(1) if m else text.strip().splitlines()[0][:80] if text.strip() else "empty"
            frames = re.findall(r"#\d+ 0x[0-9a-f]+ in (\S+) (\S+)", text)
            where = "no frames"
            for fn, loc in frames:
                if "sanitizer" in loc or "interceptor" in fn or fn.startswith("__"):
                    continue
                where = ("HDF5 " + fn if "hdf5" in loc.lower() or fn.startswith("H5") else
                         "KDScope " + fn + " " + loc.split("/")[-1] if "kdscope" in loc or "/work/" in loc else
                         fn + " (" + loc.split("/")[-1] + ")")
                break
            process = ("probe child" if any("walk" in fn or "probeHdf5File" in fn for fn, _ in frames)
                       else "consumer" if pid in consumer_pids else "other")
            key = (what, where, process)
            kinds[key] += 1
            examples.setdefault(key, path)
        print("| report | first frame outside the sanitizer | process | count | example |")
        print("|---|---|---|---:|---|")
        for (what, where, process), n in kinds.most_common():
            print(f"| {what} | {where} | {process} | {n} | {os.path.basename(examples[(what, where, process)])} |")


if __name__ == "__main__":
    main()
