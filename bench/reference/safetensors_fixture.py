#!/usr/bin/env python3
"""An independent safetensors writer and checker for ReconAD's tests.

It follows the published format (https://github.com/huggingface/safetensors,
"Format"): an 8-byte little-endian unsigned header length N, N bytes of JSON
header {"name": {"dtype", "shape", "data_offsets": [begin, end]}, ...,
"__metadata__": {str: str}}, then the raw little-endian data, offsets counted
from the start of the data. It uses only numpy, struct and json (Debian's
python3-numpy), never the safetensors package or ReconAD's code.

  --write DIR    writes the committed fixtures reference_f32.safetensors and
                 reference_mixed.safetensors into DIR
  --check FILE   validates a file ReconAD wrote (tests/test_nn_safetensors.cpp,
                 "exported checkpoint") and compares its values; exit 0 = ok

Keep the values here and in tests/test_nn_safetensors.cpp in step.
"""
import argparse
import json
import struct
import sys

import numpy as np

def f32_fixture():
    """Tensors of reference_f32.safetensors: name -> float32 array."""
    return {
        "conv.weight": (np.arange(8, dtype=np.float32) * 0.25 - 1.0).reshape(2, 1, 2, 2),
        "conv.bias": np.array([0.5, -0.5], dtype=np.float32),
        "scalar": np.array(3.25, dtype=np.float32),
        "empty": np.zeros((0, 3), dtype=np.float32),
    }


def mixed_fixture():
    """Tensors of reference_mixed.safetensors: name -> (dtype, raw bytes, shape)."""
    f16 = np.array([1.0, -2.5, 2.0**-14, 2.0**-24, 65504.0, -0.0], dtype=np.float16)
    f64 = np.array([0.1, -1e-3, 12345.678, 1e-300], dtype=np.float64).reshape(2, 2)
    # numpy has no bfloat16: take the upper 16 bits of float32 values that
    # bfloat16 holds exactly.
    bf32 = np.array([1.0, -3.0, 0.15625, 2.0**100], dtype=np.float32)
    bf16 = (bf32.view(np.uint32) >> 16).astype("<u2")
    return {
        "half": ("F16", f16.astype("<f2").tobytes(), [6]),
        "double": ("F64", f64.astype("<f8").tobytes(), [2, 2]),
        "brain": ("BF16", bf16.tobytes(), [4]),
    }


def write_file(path, entries, metadata, data_order):
    """entries: name -> (dtype, bytes, shape). Data are laid out in data_order."""
    header = {}
    offset = 0
    blobs = []
    for name in data_order:
        dtype, raw, shape = entries[name]
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - (8 + len(text)) % 8) % 8)  # data start aligned to 8 bytes
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def write_fixtures(directory):
    f32 = {k: ("F32", v.astype("<f4").tobytes(), v.shape) for k, v in f32_fixture().items()}
    # Data in reverse-sorted order, so that header order and data order differ.
    write_file(f"{directory}/reference_f32.safetensors", f32,
               {"format": "pt", "note": "written by safetensors_fixture.py \u00e9\"\\"},
               sorted(f32, reverse=True))
    mixed = mixed_fixture()
    write_file(f"{directory}/reference_mixed.safetensors", mixed, None, ["half", "double", "brain"])


def expected_export():
    """What tests/test_nn_safetensors.cpp writes for --check: a checkpoint."""
    w = ((np.arange(6, dtype=np.float32) - 2.5) / 4).reshape(3, 2)
    return {
        "model.fc.weight": w,
        "model.fc.bias": np.array([0.1, 0.2, 0.3], dtype=np.float32),
        "model.empty": np.zeros((0, 4), dtype=np.float32),
        "optimizer.step": np.array(7.0, dtype=np.float32),
        "optimizer.fc.weight.exp_avg": -w,
    }


def fail(msg):
    print(f"safetensors_fixture.py --check: {msg}", file=sys.stderr)
    sys.exit(1)


def check(path):
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        fail(f"{path}: truncated ({len(blob)} bytes)")
    (n,) = struct.unpack("<Q", blob[:8])
    if 8 + n > len(blob):
        fail(f"{path}: header length {n} past the end ({len(blob)} bytes)")
    if (8 + n) % 8 != 0:
        fail(f"{path}: data start {8 + n} is not 8-byte aligned")
    raw_header = blob[8:8 + n]
    if not raw_header.startswith(b"{"):
        fail(f"{path}: header does not start with '{{'")
    header = json.loads(raw_header.decode("utf-8"))
    data = blob[8 + n:]
    metadata = header.pop("__metadata__", {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        fail(f"{path}: __metadata__ must map strings to strings")
    # Ranges must tile the data exactly: sorted, contiguous, covering it all.
    spans = sorted((info["data_offsets"][0], info["data_offsets"][1], name) for name, info in header.items())
    pos = 0
    for begin, end, name in spans:
        if begin != pos:
            fail(f"{path}: tensor {name} starts at {begin}, expected {pos} (gap or overlap)")
        pos = end
    if pos != len(data):
        fail(f"{path}: tensors cover {pos} bytes of {len(data)}")
    tensors = {}
    for name, info in header.items():
        if info["dtype"] != "F32":
            fail(f"{path}: tensor {name} has dtype {info['dtype']}, expected F32")
        dt = np.dtype("<f4")
        begin, end = info["data_offsets"]
        shape = tuple(info["shape"])
        count = int(np.prod(shape, dtype=np.int64))
        if count * dt.itemsize != end - begin:
            fail(f"{path}: tensor {name} of shape {shape} has {end - begin} bytes")
        tensors[name] = np.frombuffer(data[begin:end], dtype=dt).reshape(shape)
    want = expected_export()
    if set(tensors) != set(want):
        fail(f"{path}: names {sorted(tensors)} differ from {sorted(want)}")
    for name, w in want.items():
        got = tensors[name]
        if got.dtype != np.float32 or got.shape != w.shape or not np.array_equal(got, w):
            fail(f"{path}: tensor {name} = {got!r}, expected {w!r}")
    if metadata.get("format") != "reconad.checkpoint.v1":
        fail(f"{path}: metadata format = {metadata.get('format')!r}")
    config = json.loads(metadata.get("config", "null"))
    if config != {"lr": 0.001, "name": "t\u00e9st \"q\"", "layers": [1, 2, 3], "flag": True, "none": None}:
        fail(f"{path}: config = {config!r}")
    if metadata.get("optimizer") != "Adam":
        fail(f"{path}: optimizer = {metadata.get('optimizer')!r}")
    print(f"{path}: ok ({len(tensors)} tensors, {len(metadata)} metadata entries)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", metavar="DIR")
    group.add_argument("--check", metavar="FILE")
    args = ap.parse_args()
    if args.write:
        write_fixtures(args.write)
    else:
        check(args.check)


if __name__ == "__main__":
    main()
