#!/usr/bin/env python3
"""Only core/record/run_layout.{h,cpp} spells a run-file path (issue #12, DESIGN.md "one
truth per number").

The segment names of format v1 are taken from run_layout itself (every string literal in
run_layout.h/.cpp, split at '/'), so a path added there is covered without editing this
test. Then every string literal in core/, widgets/ and app/ sources (comments excluded) that
looks like a path (no spaces, holds a '/') and has one of those segments as a component is
reported with its file and line: "/tasks/%1/models/%2/train/loss", g + "/cka",
"eval/logits" all fail; "student/augment" (a seed label), "data.noun" (a file) and a bare
entry name passed to layout::analysisEntry do not.

Usage: check_layout_paths.py SOURCE_DIR          exit 0 when clean, 1 with the offenders
       check_layout_paths.py --self-test          the detector finds planted offenders
"""
import pathlib
import re
import sys

LITERAL = re.compile(r'"((?:[^"\\\n]|\\.)*)"')
PATHLIKE = re.compile(r'^[A-Za-z0-9_%*{}<>.\-/]*/[A-Za-z0-9_%*{}<>.\-/]*$')
LAYOUT_FILES = ("core/record/run_layout.h", "core/record/run_layout.cpp")
SCANNED = ("core", "widgets", "app")
# Words that are run-file segments but also ordinary path words elsewhere: none today. A
# segment listed here is not matched (say why beside it).
NOT_SEGMENTS = set()


def code_only(line):
    """The line without a // comment (string literals kept; '//' inside one is kept)."""
    out = []
    in_string = False
    i = 0
    while i < len(line):
        ch = line[i]
        if in_string:
            out.append(ch)
            if ch == "\\" and i + 1 < len(line):
                out.append(line[i + 1])
                i += 1
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
            out.append(ch)
        elif line.startswith("//", i):
            break
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def segments_of_layout(root):
    """(groups, leaves): the path components run_layout spells. Groups are the components
    that have children (tasks, models, eval, analysis...), leaves the rest (logits, cka...).
    Taken from the path builders of run_layout.cpp (before its codecs) and the entry and
    relative-name constants of run_layout.h; attribute names are not path components."""
    literals = []
    cpp = (root / LAYOUT_FILES[1]).read_text()
    for line in cpp.split("// ---- Codecs")[0].splitlines():
        if line.startswith("#include"):
            continue
        literals += LITERAL.findall(code_only(line))
    header = (root / LAYOUT_FILES[0]).read_text()
    in_entry = False
    for line in header.splitlines():
        if line.startswith("namespace entry {"):
            in_entry = True
        elif line.startswith("} // namespace entry"):
            in_entry = False
        if in_entry or "Name = " in line:
            literals += LITERAL.findall(code_only(line))
    groups, leaves = set(), set()
    # A builder's group argument: join(task(t), "eval/labels") makes "tasks" a group too.
    groups.update({"tasks", "models", "analysis", "classifier", "eval_curve", "train_records", "terms"})
    for literal in literals:
        parts = [p for p in literal.split("/") if p]
        for i, part in enumerate(parts):
            if not re.fullmatch(r"[a-z_][a-z0-9_]*", part):
                continue
            (groups if i + 1 < len(parts) else leaves).add(part)
    return groups - NOT_SEGMENTS, (leaves - groups) - NOT_SEGMENTS


def offenders_in(text, segments):
    """Lines with a path literal: one that starts with "/" and a run-file component
    ("/tasks/...", g + "/cka"), or has two or more components, all run-file components, one
    of them a group ("eval/logits", "tasks/x/models"). Messages and labels such as
    "attention/head_js" (an analysis and its result, no group) or "knowledge/" pass."""
    groups, leaves = segments
    known = groups | leaves
    found = []
    in_block_comment = False
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if in_block_comment:
            if "*/" in stripped:
                in_block_comment = False
            continue
        if stripped.startswith("/*"):
            in_block_comment = "*/" not in stripped
            continue
        if stripped.startswith("*") or stripped.startswith("#include"):
            continue
        for literal in LITERAL.findall(code_only(line)):
            if not PATHLIKE.match(literal):
                continue
            parts = [p for p in literal.split("/") if p]
            fixed = [p for p in parts if "%" not in p and "*" not in p and "{" not in p]
            hits = [p for p in fixed if p in known]
            rooted = literal.startswith("/") and parts and parts[0] in known
            chained = (len(fixed) >= 2 and len(hits) == len(fixed) and any(p in groups for p in hits)) or \
                      (len(hits) >= 2 and any(p in groups for p in hits))
            if rooted or chained:
                found.append((number, literal, hits))
    return found


def scan(root):
    segments = segments_of_layout(root)
    if len(segments[0]) < 5 or len(segments[1]) < 40:
        raise SystemExit(f"only {len(segments[0])} group and {len(segments[1])} leaf names found in "
                         f"{LAYOUT_FILES}: is the layout there?")
    layout = {root / name for name in LAYOUT_FILES}
    problems = []
    count = 0
    for folder in SCANNED:
        for path in sorted((root / folder).rglob("*")):
            if path.suffix not in (".h", ".cpp") or path in layout:
                continue
            count += 1
            for number, literal, hits in offenders_in(path.read_text(), segments):
                problems.append(f"{path.relative_to(root)}:{number}: \"{literal}\" spells a run-file path "
                                f"(segments {', '.join(hits)}); build it with core/record/run_layout.h")
    return count, segments, problems


def self_test():
    segments = ({"tasks", "models", "train", "eval", "analysis"}, {"loss", "cka", "logits", "attention", "head_js"})
    planted = '\n'.join([
        'const QString a = QStringLiteral("/tasks/%1/models/%2/train/loss");',  # 1: offender
        'out.floats(g + "/cka", dims, v);',  # 2: offender
        'file.readFloat("eval/logits");',  # 3: offender
        'deriveSeed(seed, task, name + "/augment");',  # 4: not a layout segment
        '// "/tasks/x" in a comment',  # 5: comment
        'throw InputError("the tasks / models differ");',  # 6: has spaces: a message
        'results.matrix(task, who, "cka");',  # 7: an entry name, no slash
        'auto x = "a//b"; // "/tasks/y"',  # 8: comment after code
        'skip(task, "attention/head_js", why);',  # 9: an analysis and its result: a label
        'QStringLiteral("/tasks/%1/models/%2/train/loss");',  # 10: offender (placeholders)
    ])
    got = [n for n, _, _ in offenders_in(planted, segments)]
    if got != [1, 2, 3, 10]:
        raise SystemExit(f"self-test: expected offenders on lines [1, 2, 3, 10], found {got}")
    print("self-test passed: lines 1-3 and 10 flagged, 4-9 not")


def main():
    if sys.argv[1:] == ["--self-test"]:
        self_test()
        return 0
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    root = pathlib.Path(sys.argv[1]).resolve()
    self_test()
    count, segments, problems = scan(root)
    for p in problems:
        print(p)
    print(f"{count} source files scanned for {len(segments[0])} group and {len(segments[1])} entry names: "
          f"{len(problems)} path literal(s) outside run_layout")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
