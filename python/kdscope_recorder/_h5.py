"""Low-level HDF5 writing as KDScope's own writer does it (core/record/h5_file.cpp).

Every choice here mirrors the C++ writer, so that a file from this package and one from
`kdscope run` differ only in their data: the 1.8 file format at most, groups that track
link creation order, variable-length UTF-8 strings, int64 and float32 elements, chunks of
at most 1 MiB, shuffle + deflate level 4, NaN as the fill value of float datasets, and a
metadata cache that writes metadata only when the file is flushed.
"""

import math
import os

import h5py
import numpy as np

MAX_CHUNK_BYTES = 1 << 20  # HDF5's default chunk cache per dataset
DEFLATE_LEVEL = 4
LOG_CHUNK_ROWS = 256  # extendable logs: uncompressed chunks of 256 rows
EVAL_CHUNK_ROWS = 256  # eval outputs and the classifier

INT64 = np.dtype("<i8")
FLOAT32 = np.dtype("<f4")
FLOAT16 = np.dtype("<f2")
STRING = h5py.string_dtype(encoding="utf-8")


def clean_string(value):
    """A str HDF5 can store and every reader can decode: bytes are decoded as UTF-8 with
    invalid sequences as U+FFFD; lone surrogates and NUL characters (HDF5 strings end at
    a NUL) become U+FFFD too, as in KDScope's writer."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    value = str(value)
    if "\0" in value or any(0xD800 <= ord(ch) <= 0xDFFF for ch in value):
        value = "".join("\ufffd" if ch == "\0" or 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in value)
    return value


def open_for_writing(path):
    """Creates (truncates) `path` as KDScope's writer does. Returns the h5py file."""
    f = h5py.File(path, "w", libver=("earliest", "v108"), track_order=False)
    # Metadata is written only when the file is flushed, never in between: what a crash
    # leaves is exactly the last flush (docs/run-format.md, "Status and crashes").
    config = f.id.get_mdc_config()
    config.evictions_enabled = False
    config.incr_mode = 0  # H5C_incr__off
    config.flash_incr_mode = 0  # H5C_flash_incr__off
    config.decr_mode = 0  # H5C_decr__off
    f.id.set_mdc_config(config)
    return f


def sync(f, fd):
    """HDF5 flush, then fsync, so that the flushed state survives the process."""
    f.flush()
    os.fsync(fd)


def ensure_group(f, path):
    """Creates `path` and its missing parents, each tracking link creation order (tracked
    and indexed), so readers list tasks and models in the order they were written."""
    parts = [p for p in path.split("/") if p]
    current = "/"
    for part in parts:
        child = current.rstrip("/") + "/" + part
        if child not in f:
            gcpl = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
            gcpl.set_link_creation_order(h5py.h5p.CRT_ORDER_TRACKED | h5py.h5p.CRT_ORDER_INDEXED)
            h5py.h5g.create(f[current].id, part.encode("utf-8"), gcpl=gcpl)
        elif not isinstance(f[child], h5py.Group):
            raise ValueError(f"{f.filename}: {child}: exists and is not a group")
        current = child
    return f[current] if parts else f["/"]


def chunk_shape(path, shape, itemsize, chunk_rows, extendable):
    """KDScope's chunk: `chunk_rows` rows (or as many as fit 1 MiB), at most the rows of a
    fixed dataset; one row above 1 MiB is split by halving the next dimensions."""
    row_bytes = itemsize * math.prod(shape[1:])
    if row_bytes == 0:
        raise ValueError(f"{path}: cannot chunk a dataset of shape {list(shape)} (a dimension is 0)")
    budget_rows = max(1, MAX_CHUNK_BYTES // row_bytes)
    rows = min(chunk_rows, budget_rows) if chunk_rows > 0 else budget_rows
    if not extendable:
        rows = min(rows, shape[0])
    chunk = [rows] + list(shape[1:])
    for d in range(1, len(chunk)):
        while chunk[d] > 1 and itemsize * math.prod(chunk) > MAX_CHUNK_BYTES:
            chunk[d] = (chunk[d] + 1) // 2
    return tuple(chunk)


def create_dataset(f, path, dtype, shape, extendable=False, chunk_rows=0, compress=False):
    """H5File::createDataset: a dataset of `shape` (first dimension unlimited when
    `extendable`), chunked when extendable, compressed or given chunk rows (and not empty),
    shuffle + deflate 4 when `compress`, NaN fill for floats. Created through h5py's
    low-level API with HDF5's default properties otherwise (fill time "if set", times
    tracked, ASCII link names), as the C++ writer creates it."""
    if path in f:
        raise ValueError(f"{f.filename}: {path}: cannot create the dataset: the path exists")
    parent, name = path.rsplit("/", 1)
    group = ensure_group(f, parent)
    is_string = dtype is STRING
    dtype = STRING if is_string else np.dtype(dtype)
    shape = tuple(int(s) for s in shape)
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    chunked = (extendable or compress or chunk_rows > 0) and (extendable or shape[0] > 0)
    if chunked:
        dcpl.set_chunk(chunk_shape(path, shape, dtype.itemsize, chunk_rows, extendable))
        if compress:
            dcpl.set_shuffle()
            dcpl.set_deflate(DEFLATE_LEVEL)
    if not is_string and dtype.kind == "f":
        dcpl.set_fill_value(np.array(np.nan, dtype=dtype))
    maxshape = ((h5py.h5s.UNLIMITED,) + shape[1:]) if extendable else shape
    space = h5py.h5s.create_simple(shape, maxshape)
    tid = h5py.h5t.py_create(dtype, logical=True)
    dsid = h5py.h5d.create(group.id, name.encode("utf-8"), tid, space, dcpl=dcpl)
    return h5py.Dataset(dsid)


def write_strings(f, path, values):
    """A 1-D dataset of variable-length UTF-8 strings, contiguous (as H5File::writeStrings)."""
    values = [clean_string(v) for v in values]
    ds = create_dataset(f, path, STRING, (len(values),))
    if values:
        ds[...] = np.array(values, dtype=object)
    return ds


def write_array(f, path, dtype, array, compress):
    """H5File::writeInt64 / writeFloat: a fixed dataset written whole."""
    array = np.ascontiguousarray(array, dtype=dtype)
    ds = create_dataset(f, path, dtype, array.shape, compress=compress)
    if array.size:
        ds[...] = array
    return ds


def set_str(obj, name, value):
    obj.attrs[name] = clean_string(value)


def set_str_array(obj, name, values):
    obj.attrs.create(name, [clean_string(v) for v in values], shape=(len(values),), dtype=STRING)


def set_int(obj, name, value):
    obj.attrs.create(name, np.int64(value), dtype=INT64)


def append_column(f, path, dtype, values, align_to):
    """RunWriter's appendColumn: an extendable, uncompressed log column of 256-row chunks,
    created on first use with `align_to` NaN (fill) rows so it stays aligned with the
    step column; then `values` are appended."""
    if path not in f:
        ds = create_dataset(f, path, dtype, (0,), extendable=True, chunk_rows=LOG_CHUNK_ROWS)
        if align_to > 0:
            ds.resize((align_to,))
    ds = f[path]
    values = np.asarray(values, dtype=dtype)
    start = ds.shape[0]
    ds.resize((start + len(values),) + ds.shape[1:])
    if len(values):
        ds[start:start + len(values)] = values
    return ds


def rows_of(f, path):
    return f[path].shape[0] if path in f else 0
