#!/usr/bin/python3
"""Mutated job files for the fuzz bench (bench/fuzz.sh).

    fuzz_mutate_jobs.py OUT_DIR START COUNT BASE_JOB.json...

writes OUT_DIR/jNNNNN.json for NNNNN in [START, START + COUNT) and appends to
OUT_DIR/manifest.tsv: path, kind, the JSON path the mutation touched (in the parser's
notation, "students[1].objective.temperature"; "<syntax>" when the text is no longer JSON,
"" when no issue is expected at a particular place), what was done. random.Random(NNNNN) per
file. Kinds, in turn (index mod 10):

  wrong_type     a value replaced by one of another JSON type
  missing_key    a key deleted
  extra_key      an unknown key added to an object
  huge_number    a number set to 1e308, 2^63, 2^64, -2^63 - 1, 10^30, 1e-320, 1e309 (overflow)
  negative       a number set to -1, -1e9, -0.0, -2^31
  deep_nesting   a value replaced by 10,000 nested arrays or objects (1 in 10: 100,000;
                 1 in 20: 1,000,000)
  invalid_utf8   invalid UTF-8 bytes in a string value or key
  huge_string    a string value of 100 MB (1 in 5; the others 1-10 MB)
  syntax         cut short, a byte flipped, a comment, a trailing comma, a NUL, a BOM + garbage
  mixed          2-4 of the value mutations above at different paths
"""
import json
import os
import random
import sys

KINDS = ["wrong_type", "missing_key", "extra_key", "huge_number", "negative", "deep_nesting",
         "invalid_utf8", "huge_string", "syntax", "mixed"]
PLACEHOLDER = "\u0001FUZZ\u0001"


def join(path, key):
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def nodes(doc, path=""):
    """(path, container, key, value) of every value below the root."""
    out = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            p = join(path, k)
            out.append((p, doc, k, v))
            out.extend(nodes(v, p))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            p = join(path, i)
            out.append((p, doc, i, v))
            out.extend(nodes(v, p))
    return out


def objects_in(doc, path=""):
    out = [(path, doc)] if isinstance(doc, dict) else []
    for p, _, _, v in nodes(doc, path):
        if isinstance(v, dict):
            out.append((p, v))
    return out


def numbers(doc):
    return [n for n in nodes(doc) if isinstance(n[3], (int, float)) and not isinstance(n[3], bool)]


def strings(doc):
    return [n for n in nodes(doc) if isinstance(n[3], str)]


def other_type(rng, value):
    pool = [None, True, 7, -3.5, "text", [], [1, "a"], {}, {"k": 1}]
    pool = [x for x in pool if type(x) is not type(value)]
    return rng.choice(pool)


def value_mutation(doc, kind, rng):
    """Mutates the parsed document; returns (json path, description, raw text or None)."""
    if kind == "wrong_type":
        p, c, k, v = rng.choice(nodes(doc))
        c[k] = other_type(rng, v)
        return p, f"{p}: {type(v).__name__} -> {json.dumps(c[k])}", None
    if kind == "missing_key":
        keyed = [n for n in nodes(doc) if isinstance(n[1], dict)]
        p, c, k, v = rng.choice(keyed)
        del c[k]
        return p, f"deleted {p}", None
    if kind == "extra_key":
        p, o = rng.choice(objects_in(doc))
        name = rng.choice(["extra", "lamda", "epochs_", "batchsize", "Seed", "", " ", "__proto__", "\u00e9t\u00e9"])
        while name in o:
            name += "x"
        o[name] = rng.choice([1, "x", None, [], {}])
        return join(p, name), f"added {join(p, name)!r}", None
    if kind in ("huge_number", "negative"):
        nums = numbers(doc)
        if not nums:
            return value_mutation(doc, "wrong_type", rng)
        p, c, k, v = rng.choice(nums)
        if kind == "negative":
            text = rng.choice(["-1", "-1e9", "-0.0", "-2147483648", "-0.5"])
        else:
            text = rng.choice(["1e308", "9223372036854775808", "18446744073709551616", "-9223372036854775809",
                               "1000000000000000000000000000000", "1e-320", "2147483648", "1e309"])
        c[k] = PLACEHOLDER
        return p, f"{p} = {text}", text
    if kind == "deep_nesting":
        p, c, k, v = rng.choice(nodes(doc))
        r = rng.random()
        depth = 1_000_000 if r < 0.05 else 100_000 if r < 0.15 else 10_000
        text = "[" * depth + "]" * depth if rng.random() < 0.5 else '{"a":' * depth + "1" + "}" * depth
        c[k] = PLACEHOLDER
        return p, f"{p} = {depth} nested {'arrays' if text[0] == '[' else 'objects'}", text
    if kind == "invalid_utf8":
        p, c, k, v = rng.choice(strings(doc) or nodes(doc))
        bad = rng.choice([b"\xff", b"\xc3(", b"\xe2\x82", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80abc"])
        c[k] = PLACEHOLDER
        return "<syntax>", f"{p}: invalid UTF-8 {bad!r}", b'"abc' + bad + b'"'
    if kind == "huge_string":
        p, c, k, v = rng.choice(strings(doc) or nodes(doc))
        size = 100 << 20 if rng.random() < 0.2 else rng.randint(1, 10) << 20
        c[k] = PLACEHOLDER
        return p, f"{p} = string of {size} bytes", b'"' + b"a" * size + b'"'
    raise ValueError(kind)


def render(doc, raw):
    text = json.dumps(doc, indent=2, ensure_ascii=False).encode()
    if raw is not None:
        if isinstance(raw, str):
            raw = raw.encode()
        text = text.replace(json.dumps(PLACEHOLDER).encode(), raw, 1)
    return text


def syntax(text, rng):
    r = rng.randrange(6)
    if r == 0:
        cut = rng.randrange(len(text))
        return text[:cut], f"cut at {cut} of {len(text)}"
    if r == 1:
        i = rng.randrange(len(text))
        b = bytearray(text)
        b[i] = rng.randrange(256)
        return bytes(b), f"byte {i} -> {b[i]}"
    if r == 2:
        i = text.index(b"\n")
        return text[:i] + b" // comment" + text[i:], "a // comment"
    if r == 3:
        i = text.rindex(b"}")
        return text[:i] + b"," + text[i:], "trailing comma"
    if r == 4:
        i = rng.randrange(len(text))
        return text[:i] + b"\x00" + text[i:], f"NUL at {i}"
    return b"\xef\xbb\xbf" + rng.choice([b"", b"null", b"[]", b"42", b"\"job\"", text + b"{}"]), "BOM + other document"


def main():
    out_dir, start, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    bases = sys.argv[4:]
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "manifest.tsv"), "a") as manifest:
        for i in range(start, start + count):
            rng = random.Random(1_000_000 + i)
            base = bases[i % len(bases)]
            kind = KINDS[(i // len(bases)) % len(KINDS)]
            with open(base) as fh:
                doc = json.load(fh)
            if kind == "syntax":
                text, what = syntax(json.dumps(doc, indent=2).encode(), rng)
                path = "<syntax>"
            elif kind == "mixed":
                paths, whats, raw = [], [], None
                for _ in range(rng.randint(2, 4)):
                    k = rng.choice(["wrong_type", "missing_key", "extra_key", "negative"])
                    p, w, _ = value_mutation(doc, k, rng)
                    paths.append(p)
                    whats.append(w)
                path, what = "|".join(paths), "; ".join(whats)
                text = render(doc, None)
            else:
                path, what, raw = value_mutation(doc, kind, rng)
                text = render(doc, raw)
            out = os.path.join(out_dir, f"j{i:05d}.json")
            with open(out, "wb") as fh:
                fh.write(text)
            what = what.replace("\t", " ").replace("\n", " ")[:300]
            manifest.write(f"{out}\t{kind}\t{path}\t{os.path.basename(base)}: {what}\n")


if __name__ == "__main__":
    main()
