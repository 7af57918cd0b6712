#!/usr/bin/python3
"""End-to-end test of `kdscope export` (issue #6), run by ctest as widgets_export_cli.

It runs the real executable with no display (DISPLAY, WAYLAND_DISPLAY and QT_QPA_PLATFORM
unset) on small run files written by kdscope_widgets_tests --write-run, and checks:
  - --list names the figures; --print-style prints the preset; bad input exits 2;
  - a figure pack: every listed figure as PDF, SVG, PNG and CSV, and an index with captions;
  - PNG: the pixel size the preset and DPI give (IHDR) and its DPI (pHYs);
  - SVG: parses as XML, holds its axis labels as <text>, no <image> in line plots;
  - PDF: pdftotext finds the axis labels, pdfinfo the page size, pdfimages no image in line plots;
  - CSV: the numbers equal the run file's (read with h5py), header names the run file;
  - two runs: comparison figures, an HTML index;
  - a study (kdscope_widgets_tests --write-study): --study --list, a study figure pack whose
    heatmap CSV holds the hand-made gaps and whose PDF/SVG hold their labels as text, and
    exit 2 naming the file for a folder without a summary or a missing cell run file;
  - the window (kdscope_widgets_tests --window-export: File > Export figure pack in a real
    MainWindow) writes byte-identical files for the same style file, offscreen, and under
    Xvfb with the xcb platform when xvfb-run is installed.

usage: check_export.py KDSCOPE WIDGET_TESTS OUT_DIR
"""

import csv
import io
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET

import h5py
import numpy as np

KDSCOPE, TESTS, OUT = sys.argv[1], sys.argv[2], sys.argv[3]
FAILURES = []


def check(condition, message):
    if not condition:
        FAILURES.append(message)
        print("FAIL:", message, file=sys.stderr)


def headless_env():
    env = dict(os.environ)
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        env.pop(name, None)
    env.pop("SOURCE_DATE_EPOCH", None)
    env["HOME"] = os.path.join(OUT, "home")  # no user settings
    env["XDG_CONFIG_HOME"] = os.path.join(OUT, "home", ".config")
    return env


def kdscope(*args, expect=0):
    result = subprocess.run([KDSCOPE, "export", *args], env=headless_env(), capture_output=True, text=True,
                            timeout=300)
    check(result.returncode == expect,
          f"kdscope export {' '.join(args)}: exit {result.returncode}, expected {expect}\n"
          f"stdout: {result.stdout}\nstderr: {result.stderr}")
    return result


def png_facts(path):
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    width, height = struct.unpack(">II", data[16:24])
    dpi = None
    at = data.find(b"pHYs")
    if at > 0:
        x, _, unit = struct.unpack(">IIB", data[at + 4:at + 13])
        dpi = x * 0.0254 if unit == 1 else None
    return width, height, dpi


def svg_facts(path):
    root = ET.parse(path).getroot()  # raises on malformed XML
    texts, tags = [], {}
    for element in root.iter():
        tag = element.tag.split("}")[-1]
        tags[tag] = tags.get(tag, 0) + 1
        if tag == "text":
            texts.append("".join(element.itertext()).strip())
    return root, texts, tags


def tool(name):
    return shutil.which(name)


def csv_rows(path):
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    comments = [line for line in lines if line.startswith("#")]
    rows = list(csv.reader(io.StringIO("\n".join(line for line in lines if not line.startswith("#")))))
    return comments, rows


def check_study():
    """kdscope export --study on the hand-made study of test_study_export.cpp."""
    study = os.path.join(OUT, "study")
    subprocess.run([TESTS, "--write-study", study], check=True)
    names = kdscope("--study", study, "--list").stdout.split()
    expected = ["study.gap_heatmap.t", "study.gap_lines.t", "study.gap_effects.t", "study.loss.t",
                "study.loss_term.t.ce", "study.loss_term.t.kd"]
    check(names == expected, f"--study --list: {names}")
    pack = os.path.join(OUT, "study-pack")
    kdscope(study, "--figure", "all", "--format", "pdf,svg", "--out", pack)  # a positional folder
    for name in expected:
        for suffix in ("pdf", "svg", "csv"):
            check(os.path.isfile(os.path.join(pack, f"{name}.{suffix}")), f"study pack lacks {name}.{suffix}")
    check(os.path.isfile(os.path.join(pack, "index.md")), "study pack lacks index.md")
    index = open(os.path.join(pack, "index.md"), encoding="utf-8").read()
    remake = f"kdscope export --study {os.path.realpath(study)} --figure all --style style.json --format pdf,svg"
    check("- Study: hand\n" in index and remake in index and "- Run:" not in index,
          f"study index.md does not name the study and its command: {index[:600]}")
    comments, rows = csv_rows(os.path.join(pack, "study.gap_heatmap.t.csv"))
    gaps = {(int(r[0]), int(r[2])): float(r[4]) for r in rows[1:]}
    check(rows[0] == ["row", "row_label", "column", "column_label", "value"], f"heatmap CSV header: {rows[0]}")
    check(gaps == {(0, 0): 0.10, (0, 1): 0.06, (1, 0): 0.04, (1, 1): 0.00}, f"heatmap CSV gaps: {gaps}")
    summary = os.path.realpath(os.path.join(study, "study_summary.json"))
    check(f"# run: {summary}" in comments, f"heatmap CSV does not name {summary}: {comments}")
    _, texts, tags = svg_facts(os.path.join(pack, "study.gap_lines.t.svg"))
    check("layers (no bars: one run per cell)" in texts and tags.get("image", 0) == 0, f"study lines SVG: {texts} {tags}")
    if tool("pdftotext"):
        text = subprocess.run(["pdftotext", os.path.join(pack, "study.gap_heatmap.t.pdf"), "-"],
                              capture_output=True, text=True).stdout
        for label in ("layers", "heads"):
            check(label in text, f"pdftotext finds no {label!r} in study.gap_heatmap.t.pdf: {text!r}")
    bad = kdscope("--study", os.path.join(study, "cells"), "--out", os.path.join(OUT, "bad"), expect=2)
    check(os.path.join(study, "cells", "study_summary.json") in bad.stderr, f"no summary message: {bad.stderr}")
    os.remove(os.path.join(study, "cells", "L2_H2", "run.h5"))
    bad = kdscope("--study", study, "--out", os.path.join(OUT, "bad"), expect=2)
    check(os.path.join("cells", "L2_H2", "run.h5") in bad.stderr, f"missing cell run message: {bad.stderr}")


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(os.path.join(OUT, "home"))
    run = os.path.join(OUT, "analysed.h5")
    run2 = os.path.join(OUT, "second.h5")
    subprocess.run([TESTS, "--write-run", run, "--analysis"], check=True)
    subprocess.run([TESTS, "--write-run", run2, "--analysis", "--variant", "1"], check=True)
    canonical = os.path.realpath(run)

    # --list, --print-style, bad input.
    listed = kdscope(run, "--list").stdout.split("\n")
    names = [line for line in listed if line and not line.startswith("#")]
    families = [line for line in listed if line.startswith("# ")]
    for name in ("overview.loss.polarity", "overview.accuracy.polarity", "layers.cka.polarity.kd",
                 "heads.entropy.polarity.teacher", "heads.divergence.polarity.kd", "tasks.recall.polarity.kd",
                 "knowledge.cosine.polarity.teacher", "knowledge.grad_rescale.polarity.kd",
                 "heads.attention.polarity.teacher.e0.l1.mean"):
        check(name in names, f"--list lacks {name}: {names}")
    check(any("heads.attention.polarity.kd.eE.lL.hH|mean" in f for f in families), f"--list families: {families}")
    style = json.loads(kdscope("--print-style", "--style", "double-column").stdout)
    check(style["width_in"] == 7.16 and 8 <= style["font_size_pt"] <= 10, f"--print-style double-column: {style}")
    bad = kdscope(run, "--figure", "no.such.figure", "--out", os.path.join(OUT, "bad"), expect=2)
    check("no figure named no.such.figure" in bad.stderr, f"unknown figure message: {bad.stderr}")
    bad_style = os.path.join(OUT, "bad_style.json")
    with open(bad_style, "w") as f:
        json.dump({"preset": "single-column", "colour": "red"}, f)
    bad = kdscope(run, "--style", bad_style, "--out", os.path.join(OUT, "bad"), expect=2)
    check('unknown key "colour"' in bad.stderr, f"bad style message: {bad.stderr}")
    kdscope(run, "--format", "gif", "--out", os.path.join(OUT, "bad"), expect=2)
    kdscope(run, expect=2)  # no --out
    kdscope(os.path.join(OUT, "missing.h5"), "--out", os.path.join(OUT, "bad"), expect=2)

    # A figure pack with a style file (single-column, with a font that is not installed).
    style_file = os.path.join(OUT, "style.json")
    with open(style_file, "w") as f:
        json.dump({"preset": "single-column", "font_family": "No Such Font", "dpi": 300}, f)
    pack = os.path.join(OUT, "cli")
    result = kdscope(run, "--figure", "all", "--style", style_file, "--out", pack, "--index", "md")
    check("not installed; using DejaVu Sans" in result.stderr, f"font fallback warning: {result.stderr}")
    index = open(os.path.join(pack, "index.md"), encoding="utf-8").read()
    for name in names:
        for suffix in ("pdf", "svg", "png", "csv"):
            check(os.path.isfile(os.path.join(pack, f"{name}.{suffix}")), f"pack lacks {name}.{suffix}")
        check(f"![{name}]({name}.png)" in index, f"index.md does not show {name}")
    check("*Figure 1.* Training loss on task polarity" in index, "index.md captions")

    # PNG sizes: single-column 3.5 in x 2.625 in at 300 dpi.
    for name in names:
        width, height, dpi = png_facts(os.path.join(pack, f"{name}.png"))
        check((width, height) == (1050, 788), f"{name}.png is {width}x{height}, expected 1050x788")
        check(dpi is not None and abs(dpi - 300) < 0.01, f"{name}.png dpi {dpi}")
    kdscope(run, "--figure", "overview.accuracy.polarity", "--format", "png", "--style", "double-column",
            "--dpi", "600", "--out", os.path.join(OUT, "wide"))
    width, height, dpi = png_facts(os.path.join(OUT, "wide", "overview.accuracy.polarity.png"))
    check((width, height) == (4296, 1718), f"double-column 600 dpi: {width}x{height}")
    check(not os.path.exists(os.path.join(OUT, "wide", "index.md")), "no index unless asked or all")

    # SVG: text as text; line plots without images; heatmaps carry their colour scale.
    _, texts, tags = svg_facts(os.path.join(pack, "overview.loss.polarity.svg"))
    for label in ("step", "loss (nats)", "teacher", "ce", "kd"):
        check(label in texts, f"overview.loss.polarity.svg lacks text {label!r}: {texts}")
    for name in names:
        _, _, tags = svg_facts(os.path.join(pack, f"{name}.svg"))
        heatmap = name.split(".")[1] in ("cka", "importance", "entropy", "divergence", "attention", "cosine",
                                         "probability")
        check((tags.get("image", 0) > 0) == heatmap, f"{name}.svg images: {tags.get('image', 0)}")
    _, texts, _ = svg_facts(os.path.join(pack, "layers.cka.polarity.kd.svg"))
    check("linear CKA" in texts and "0.2" in texts and "0.8" in texts, f"the CKA colour scale: {texts}")

    # PDF: text layer, page size, no images in line plots.
    if tool("pdftotext") and tool("pdfinfo"):
        text = subprocess.run(["pdftotext", os.path.join(pack, "overview.accuracy.polarity.pdf"), "-"],
                              capture_output=True, text=True).stdout
        for label in ("epoch", "accuracy", "teacher", "kd"):
            check(label in text, f"pdftotext overview.accuracy.polarity.pdf lacks {label!r}: {text!r}")
        text = subprocess.run(["pdftotext", os.path.join(pack, "layers.cka.polarity.kd.pdf"), "-"],
                              capture_output=True, text=True).stdout
        for label in ("linear CKA", "teacher layer", "kd layer"):
            check(label in text, f"pdftotext layers.cka.polarity.kd.pdf lacks {label!r}: {text!r}")
        info = subprocess.run(["pdfinfo", os.path.join(pack, "overview.accuracy.polarity.pdf")],
                              capture_output=True, text=True).stdout
        check("Page size:       252 x 189 pts" in info, f"pdfinfo: {info}")
        if tool("pdffonts"):
            fonts = subprocess.run(["pdffonts", os.path.join(pack, "overview.accuracy.polarity.pdf")],
                                   capture_output=True, text=True).stdout
            check("DejaVuSans" in fonts and " yes " in fonts, f"pdffonts (embedded DejaVu Sans): {fonts}")
        if tool("pdfimages"):
            for name in ("overview.loss.polarity", "overview.accuracy.polarity", "tasks.recall.polarity.kd"):
                listing = subprocess.run(["pdfimages", "-list", os.path.join(pack, f"{name}.pdf")],
                                         capture_output=True, text=True).stdout.strip().splitlines()
                check(len(listing) == 2, f"{name}.pdf embeds images: {listing}")
    else:
        print("note: poppler-utils missing, PDF checks skipped", file=sys.stderr)

    # CSV against the run file, read with h5py.
    with h5py.File(run, "r") as f:
        comments, rows = csv_rows(os.path.join(pack, "overview.loss.polarity.csv"))
        check(f"# run: {canonical}" in comments, f"CSV header names the run: {comments}")
        check(any(c.startswith("# objects: /tasks/polarity/models/*/train/step") for c in comments), comments)
        check(rows[0] == ["series", "index", "x", "y"], rows[0])
        for model in ("teacher", "ce", "kd"):
            steps = f[f"tasks/polarity/models/{model}/train/step"][:]
            loss = f[f"tasks/polarity/models/{model}/train/loss"][:]
            got = [(float(r[2]), float(r[3])) for r in rows[1:] if r[0] == model]
            check(got == [(float(s), float(v)) for s, v in zip(steps, loss)], f"loss CSV of {model}: {got}")
        comments, rows = csv_rows(os.path.join(pack, "layers.cka.polarity.kd.csv"))
        check(any("analysis: written by `kdscope analyze`" in c for c in comments), comments)
        cka = f["tasks/polarity/analysis/kd/cka"][:]
        got = np.zeros(cka.shape)
        for r in rows[1:]:
            got[int(r[0]), int(r[2])] = float(r[4])
        check(np.array_equal(got, cka.astype(np.float64)), f"CKA CSV {got} != {cka}")
        comments, rows = csv_rows(os.path.join(pack, "knowledge.grad_rescale.polarity.kd.csv"))
        w = f["tasks/polarity/analysis/kd/grad_rescale"][:]
        got = [float(r[3]) for r in rows[1:]]
        check(got == [float(v) for v in w], f"grad_rescale CSV y {got} != {list(w)}")

    # Two runs: comparison figures and an HTML index.
    compare = os.path.join(OUT, "compare")
    kdscope(run, run2, "--figure", "all", "--out", compare, "--index", "html", "--format", "svg,png")
    html = open(os.path.join(compare, "index.html"), encoding="utf-8").read()
    for name in ("compare.accuracy.polarity", "compare.eval_curve.polarity.teacher", "compare.loss.polarity.kd",
                 "analysed/overview.loss.polarity", "second/layers.cka.polarity.kd"):
        check(os.path.isfile(os.path.join(compare, f"{name}.svg")), f"comparison pack lacks {name}.svg")
        check(f'<img src="{name}.png"' in html, f"index.html does not show {name}")
    _, rows = csv_rows(os.path.join(compare, "compare.eval_curve.polarity.teacher.csv"))
    series = sorted({r[0] for r in rows[1:]})
    check(series == ["analysed", "second"], f"comparison series: {series}")
    # Each point's 95% Wilson interval over the run's eval examples, from its closed form here.
    with h5py.File(run, "r") as f:
        n = float(len(f["tasks/polarity/eval/labels"]))
    check(rows[0][-2:] == ["y_lo", "y_hi"], f"comparison curve CSV header: {rows[0]}")
    z = 1.959963984540054
    for r in rows[1:]:
        k = round(float(r[3]) * n)
        centre, half = (k + z * z / 2) / (n + z * z), z / (n + z * z) * math.sqrt(k * (n - k) / n + z * z / 4)
        lo, hi = (0.0 if k == 0 else centre - half), (1.0 if k == n else centre + half)
        check(abs(float(r[-2]) - lo) < 1e-9 and abs(float(r[-1]) - hi) < 1e-9,
              f"Wilson interval of {r}: expected [{lo}, {hi}]")

    # A replicated job's folder (replicates.json): its runs compared, and the replicates'
    # mean with a 95% Student-t interval over them (t_{0.975, 2} for 3 replicates).
    reps = os.path.join(OUT, "reps")
    seeds = [11, 12, 13]
    for variant, seed in enumerate(seeds):
        os.makedirs(os.path.join(reps, f"rep-{seed}"), exist_ok=True)
        subprocess.run([TESTS, "--write-run", os.path.join(reps, f"rep-{seed}", "run.h5"), "--variant", str(variant),
                        "--replicate-seed", str(seed)], check=True)
    with open(os.path.join(reps, "replicates.json"), "w", encoding="utf-8") as f:
        json.dump({"format": "kdscope-replicates", "format_version": 1, "job_name": "small", "seeds": seeds,
                   "runs": [f"rep-{seed}/run.h5" for seed in seeds]}, f)
    reps_out = os.path.join(OUT, "reps-figures")
    kdscope(reps, "--figure", "compare.replicates.*", "--out", reps_out, "--format", "svg")
    t975 = 4.302652729911275
    curves = []
    for seed in seeds:
        with h5py.File(os.path.join(reps, f"rep-{seed}", "run.h5"), "r") as f:
            curves.append(f["tasks/polarity/models/teacher/eval_curve/accuracy"][:].astype(np.float64))
    curves = np.array(curves)
    mean = curves.mean(axis=0)
    half = t975 * curves.std(axis=0, ddof=1) / math.sqrt(len(seeds))
    comments, rows = csv_rows(os.path.join(reps_out, "compare.replicates.eval_curve.polarity.teacher.csv"))
    check(rows[0][-2:] == ["y_lo", "y_hi"], f"replicate curve CSV header: {rows[0]}")
    check(len(rows) - 1 == len(mean), f"replicate curve rows: {rows}")
    for r, m, h in zip(rows[1:], mean, half):
        check(abs(float(r[3]) - m) < 1e-12 and abs(float(r[-2]) - (m - h)) < 1e-9 and abs(float(r[-1]) - (m + h)) < 1e-9,
              f"replicate curve row {r}: expected {m} -+ {h}")
    check(os.path.isfile(os.path.join(reps_out, "compare.replicates.accuracy.polarity.svg")),
          "the replicate accuracy figure is missing")

    # The window gives the same files for the same style: File > Export figure pack in a
    # MainWindow, offscreen and (when available) on an X server through xcb.
    platforms = [("offscreen", [])]
    if tool("xvfb-run"):
        platforms.append(("xcb", ["xvfb-run", "-a", "-s", "-screen 0 1280x800x24"]))
    for platform, wrapper in platforms:
        window = os.path.join(OUT, f"window-{platform}")
        env = headless_env()
        env["QT_QPA_PLATFORM"] = platform
        result = subprocess.run([*wrapper, TESTS, "--window-export", run, window, style_file], env=env,
                                capture_output=True, text=True, timeout=300)
        check(result.returncode == 0, f"window export ({platform}): {result.stdout} {result.stderr}")
        check(f"platform {platform}" in result.stdout, f"window export ran on {result.stdout}")
        differ, same = [], 0
        for name in names:
            for suffix in ("pdf", "svg", "png", "csv"):
                a = os.path.join(pack, f"{name}.{suffix}")
                b = os.path.join(window, f"{name}.{suffix}")
                if os.path.isfile(b) and open(a, "rb").read() == open(b, "rb").read():
                    same += 1
                else:
                    differ.append(f"{name}.{suffix}")
        check(not differ, f"window ({platform}) and command line differ: {differ}")
        print(f"window ({platform}) vs command line: {same} files byte-identical")

    check_study()

    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed", file=sys.stderr)
        return 1
    print(f"export: ok ({len(names)} figures)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
