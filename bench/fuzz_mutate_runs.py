#!/usr/bin/python3
"""Randomly corrupted copies of real run files, for the fuzz bench (bench/fuzz.sh).

    fuzz_mutate_runs.py OUT_DIR START COUNT SEED_FILE...

writes OUT_DIR/NNNNN.h5 for NNNNN in [START, START + COUNT) and appends one line per file to
OUT_DIR/manifest.tsv: path, mutation kind, what was done. Each file depends only on its
number and the seed files (random.Random(NNNNN)), so a campaign can be made and run in
chunks and any file made again. Kinds, drawn in turn (index mod 9):

  truncate      cut at a random offset (a third of them inside the first 4 KiB)
  bitflip       1-64 random bits flipped (half of the time all in the metadata of one object)
  lying_dims    a dataset's or attribute's dataspace dimension rewritten in the object
                header's bytes (0, +-1, x2, 2^31, 2^40, 2^62, 2^64-1); maximum dims too
  wrong_shape   a dataset replaced by one of another (consistent-looking) shape
  wrong_type    a dataset replaced by one of another type or rank, or an attribute by a
                string, a float, an array or a compound
  delete        a dataset, group or attribute deleted (h5py del)
  link_cycle    a soft or hard link to an ancestor group, added or replacing a group; an
                external link to the file itself; a dangling soft link
  lying_values  numeric attributes set to huge, negative, NaN; strings to invalid UTF-8,
                empty, or 1 MB
  mixed         2-4 of the above (structural first, then bytes)
"""
import os
import random
import shutil
import struct
import sys

import h5py
import numpy as np

KINDS = ["truncate", "bitflip", "lying_dims", "wrong_shape", "wrong_type", "delete", "link_cycle",
         "lying_values", "mixed"]
STRUCTURAL = ["lying_dims", "wrong_shape", "wrong_type", "delete", "link_cycle", "lying_values"]


def objects(f):
    """(path, h5py object) of every group and dataset, links not followed."""
    out = [("/", f)]
    def visit(name, obj):
        out.append(("/" + name, obj))
    f.visititems(visit)
    return out


def datasets(f):
    return [(p, o) for p, o in objects(f) if isinstance(o, h5py.Dataset)]


def groups(f):
    return [(p, o) for p, o in objects(f) if isinstance(o, h5py.Group)]


def attributes(f):
    out = []
    for p, o in objects(f):
        for k in o.attrs.keys():
            out.append((p, o, k))
    return out


def lie(rng, n):
    return rng.choice([0, max(0, n - 1), n + 1, 2 * n + 3, 1 << 31, 1 << 40, 1 << 62, (1 << 64) - 1,
                       rng.randrange(1 << 64)])


def header_addr(obj):
    return h5py.h5o.get_info(obj.id).addr


def patch_dims(path, rng):
    """Rewrites a dimension of a dataset's (or an attribute's) dataspace in place, in the bytes
    of its object header: the stored shape is found as rank 8-byte little-endian integers."""
    with h5py.File(path, "r") as f:
        candidates = []
        for p, o in datasets(f):
            if o.shape:
                candidates.append((p, None, o.shape, header_addr(o)))
        for p, o, k in attributes(f):
            try:
                shape = o.attrs.get_id(k).shape
            except Exception:
                continue
            if shape:
                candidates.append((p, k, shape, header_addr(o)))
    rng.shuffle(candidates)
    with open(path, "r+b") as fh:
        data = bytearray(fh.read())
        for p, attr, shape, addr in candidates[:20]:
            pattern = struct.pack("<" + "Q" * len(shape), *shape)
            window_end = min(len(data), addr + 8192)
            at = data.find(pattern, addr, window_end)
            if at < 0:
                continue
            axis = rng.randrange(len(shape))
            value = lie(rng, shape[axis])
            struct.pack_into("<Q", data, at + 8 * axis, value)
            what = f"{p}" + (f" attr {attr}" if attr else "") + f" dim {axis}: {shape[axis]} -> {value}"
            # Sometimes the maximum dims that follow too (or only them).
            if rng.random() < 0.3 and at + 16 * len(shape) <= len(data):
                struct.pack_into("<Q", data, at + 8 * len(shape) + 8 * axis, lie(rng, shape[axis]))
                what += " (and max dim)"
            fh.seek(0)
            fh.write(data)
            return what
    return "no dataspace found"


def wrong_shape(f, rng):
    p, d = rng.choice([x for x in datasets(f) if x[1].shape] or datasets(f))
    shape = list(d.shape) or [1]
    axis = rng.randrange(len(shape))
    shape[axis] = rng.choice([0, max(0, shape[axis] - 1), shape[axis] + 1, shape[axis] * 2 + 1])
    if rng.random() < 0.3:
        shape = shape + [rng.randint(1, 3)] if rng.random() < 0.5 else shape[1:] or [2]
    dtype = d.dtype
    old = tuple(d.shape)
    del f[p]
    if dtype.kind in "SOU":
        f.create_dataset(p, shape=tuple(shape), dtype=h5py.string_dtype())
    else:
        f.create_dataset(p, data=np.ones(tuple(shape), dtype=dtype))
    return f"{p}: shape {old} -> {tuple(shape)}"


def wrong_type(f, rng):
    if rng.random() < 0.5:
        p, d = rng.choice(datasets(f))
        shape = d.shape
        n = int(np.prod(shape)) if shape else 1
        choice = rng.choice(["string", "int8", "float64", "int64", "rank", "scalar", "compound", "bool"])
        del f[p]
        if choice == "string":
            f.create_dataset(p, data=np.array([b"x"] * max(n, 1)).reshape(shape if n else (1,)))
        elif choice in ("int8", "float64", "int64"):
            f.create_dataset(p, data=np.zeros(shape, dtype=choice))
        elif choice == "bool":
            f.create_dataset(p, data=np.zeros(shape, dtype=bool))
        elif choice == "rank":
            f.create_dataset(p, data=np.zeros((max(n, 1), 1, 1), dtype=np.float32))
        elif choice == "scalar":
            f.create_dataset(p, data=np.float32(1.5))
        else:
            f.create_dataset(p, data=np.zeros(max(n, 1), dtype=[("a", "<i4"), ("b", "<f8")]))
        return f"dataset {p} -> {choice}"
    p, o, k = rng.choice(attributes(f))
    choice = rng.choice(["string", "float", "int", "array", "compound", "empty_array", "bytes"])
    del o.attrs[k]
    if choice == "string":
        o.attrs[k] = "not a number"
    elif choice == "float":
        o.attrs[k] = 2.5
    elif choice == "int":
        o.attrs[k] = np.int64(7)
    elif choice == "array":
        o.attrs[k] = np.arange(3, dtype=np.int32)
    elif choice == "compound":
        o.attrs[k] = np.zeros(1, dtype=[("a", "<i4"), ("b", "<f8")])
    elif choice == "empty_array":
        o.attrs[k] = np.zeros(0, dtype=np.float64)
    else:
        o.attrs[k] = np.void(b"\x00\xff\x01")
    return f"attr {p}@{k} -> {choice}"


def delete(f, rng):
    r = rng.random()
    if r < 0.4:
        p, o, k = rng.choice(attributes(f))
        del o.attrs[k]
        return f"attr {p}@{k}"
    pool = datasets(f) if r < 0.75 else [g for g in groups(f) if g[0] != "/"]
    p, _ = rng.choice(pool)
    del f[p]
    return p


def link_cycle(f, rng):
    gs = [g for g in groups(f) if g[0] != "/"]
    p, _ = rng.choice(gs)
    parts = p.strip("/").split("/")
    ancestors = ["/"] + ["/" + "/".join(parts[:i]) for i in range(1, len(parts))]
    target = rng.choice(ancestors + [p])
    r = rng.random()
    if r < 0.3:
        name = p + "/loop" + str(rng.randrange(100))
        f[name] = h5py.SoftLink(target)
        return f"soft link {name} -> {target}"
    if r < 0.55:
        name = p + "/hardloop"
        f[name] = f[target]
        return f"hard link {name} -> {target}"
    if r < 0.8:
        del f[p]
        f[p] = h5py.SoftLink(target if target != p else "/")
        return f"group {p} replaced by soft link -> {target}"
    if r < 0.9:
        del f[p]
        f[p] = h5py.ExternalLink(os.path.basename(f.filename), target)
        return f"group {p} replaced by external link to the file itself -> {target}"
    del f[p]
    f[p] = h5py.SoftLink("/no/such/object")
    return f"group {p} replaced by dangling soft link"


def lying_values(f, rng):
    p, o, k = rng.choice(attributes(f))
    a = o.attrs[k]
    arr = np.asarray(a)
    del o.attrs[k]
    if arr.dtype.kind in "iu":
        v = rng.choice([-1, 0, 1 << 62, -(1 << 62), (1 << 31), 999999999])
        o.attrs.create(k, np.full(arr.shape, v, dtype=np.int64))
    elif arr.dtype.kind == "f":
        v = rng.choice([float("nan"), float("inf"), -float("inf"), -1.0, 1e308, 0.0])
        o.attrs.create(k, np.full(arr.shape, v, dtype=arr.dtype))
    else:
        choice = rng.choice(["invalid_utf8", "empty", "huge", "json_garbage", "nul"])
        if choice == "invalid_utf8":
            o.attrs.create(k, np.bytes_(b"\xff\xfe\xc3(garbage\x80"))
        elif choice == "empty":
            o.attrs[k] = ""
        elif choice == "huge":
            o.attrs[k] = "x" * (1 << 20)
        elif choice == "json_garbage":
            o.attrs[k] = '{"tasks": [{"name": 5}], "teacher": [[[['
        else:
            o.attrs.create(k, np.bytes_(b"a\x00b"))
        return f"attr {p}@{k} -> {choice}"
    return f"attr {p}@{k} -> {v}"


def bitflip(path, rng):
    with open(path, "r+b") as fh:
        data = bytearray(fh.read())
        n = rng.randint(1, 64)
        if rng.random() < 0.5:
            with h5py.File(path, "r") as f:
                addrs = [header_addr(o) for _, o in objects(f)]
            base = rng.choice(addrs)
            span = (base, min(len(data), base + 512))
        else:
            span = (0, len(data))
        for _ in range(n):
            i = rng.randrange(*span)
            data[i] ^= 1 << rng.randrange(8)
        fh.seek(0)
        fh.write(data)
    return f"{n} bits in [{span[0]}, {span[1]})"


def truncate(path, rng):
    size = os.path.getsize(path)
    cut = rng.randrange(0, min(size, 4096)) if rng.random() < 0.33 else rng.randrange(0, size)
    with open(path, "r+b") as fh:
        fh.truncate(cut)
    return f"cut at {cut} of {size}"


def structural(path, kind, rng):
    if kind == "lying_dims":
        return patch_dims(path, rng)
    with h5py.File(path, "r+") as f:
        return {"wrong_shape": wrong_shape, "wrong_type": wrong_type, "delete": delete,
                "link_cycle": link_cycle, "lying_values": lying_values}[kind](f, rng)


def mutate(path, kind, rng):
    if kind == "truncate":
        return truncate(path, rng)
    if kind == "bitflip":
        return bitflip(path, rng)
    if kind == "mixed":
        steps = [rng.choice(STRUCTURAL) for _ in range(rng.randint(1, 3))]
        steps.append(rng.choice(["bitflip", "truncate", rng.choice(STRUCTURAL)]))
        done = []
        for s in steps:
            try:
                done.append(s + ": " + mutate(path, s, rng))
            except Exception as e:  # an earlier step made the file unreadable for h5py
                done.append(f"{s}: skipped ({type(e).__name__})")
        return "; ".join(done)
    return structural(path, kind, rng)


def main():
    out_dir, start, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    seeds = sys.argv[4:]
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "manifest.tsv"), "a") as manifest:
        for i in range(start, start + count):
            rng = random.Random(i)
            seed = seeds[i % len(seeds)]
            kind = KINDS[(i // len(seeds)) % len(KINDS)]
            path = os.path.join(out_dir, f"{i:05d}.h5")
            shutil.copyfile(seed, path)
            try:
                what = mutate(path, kind, rng)
            except Exception as e:
                what = f"mutation failed ({type(e).__name__}: {e}); file left as copied"
            what = what.replace("\t", " ").replace("\n", " ")
            manifest.write(f"{path}\t{kind}\t{os.path.basename(seed)}: {what}\n")


if __name__ == "__main__":
    main()
