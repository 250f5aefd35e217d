"""Hand-written safetensors I/O shared by the Python tools (tools/make_fixtures.py,
tools/tiny_llama.py and through it tools/train_default_model.py, tools/eval_default_model.py).

The format: an 8-byte little-endian header length, a compact JSON header (tensor name ->
dtype, shape, data_offsets; then "__metadata__" when given) padded with spaces so the data
starts 8-byte aligned, then the tensors' bytes in header order. The encoder and decoder work on
raw bytes (no torch); write_safetensors / read_safetensors convert torch tensors.
Files are written to <path>.part and renamed, so a reader never sees half a file.
"""

import json
import os
import struct

# safetensors dtype name -> (numpy dtype string, bytes per element)
DTYPES = {"F32": ("<f4", 4), "F16": ("<f2", 2), "BF16": ("<i2", 2), "I32": ("<i4", 4)}


def encode(entries, metadata=None):
    """entries: list of (name, dtype name, shape, raw bytes) in file order -> file bytes."""
    header, blobs, off = {}, [], 0
    for name, dtype, shape, data in entries:
        if dtype not in DTYPES:
            raise ValueError(f"{name}: unsupported dtype {dtype}")
        n = 1
        for s in shape:
            n *= s
        if len(data) != n * DTYPES[dtype][1]:
            raise ValueError(f"{name}: {len(data)} bytes for {dtype} {list(shape)}")
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    if metadata:
        header["__metadata__"] = dict(metadata)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)  # pad so the data starts 8-byte aligned
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def decode(data):
    """File bytes -> ({name: (dtype name, shape, raw bytes)} in file order, metadata)."""
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for name, info in header.items():
        a, b = info["data_offsets"]
        out[name] = (info["dtype"], info["shape"], bytes(data[base + a:base + b]))
    return out, meta


def write_bytes(path, data):
    """Write a whole file through <path>.part and a rename."""
    with open(path + ".part", "wb") as f:
        f.write(data)
    os.replace(path + ".part", path)


def _torch_entry(name, t):
    import torch

    t = t.detach().contiguous().cpu()
    names = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int32: "I32"}
    if t.dtype not in names:
        raise ValueError(f"{name}: unsupported dtype {t.dtype}")
    arr = t.view(torch.int16).numpy() if t.dtype == torch.bfloat16 else t.numpy()
    dtype = names[t.dtype]
    return name, dtype, list(t.shape), arr.astype(DTYPES[dtype][0]).tobytes(order="C")


def write_safetensors(path, tensors, metadata=None):
    """Write (name, torch tensor) pairs in the given order; returns the bytes of tensor data."""
    entries = [_torch_entry(name, t) for name, t in tensors]
    write_bytes(path, encode(entries, metadata))
    return sum(len(e[3]) for e in entries)


def read_safetensors(path):
    """Read a file into ({name: torch tensor}, metadata)."""
    import torch

    with open(path, "rb") as f:
        raw, meta = decode(f.read())
    kinds = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.int16, "I32": torch.int32}
    out = {}
    for name, (dtype, shape, data) in raw.items():
        t = torch.frombuffer(bytearray(data), dtype=kinds[dtype])
        if dtype == "BF16":
            t = t.view(torch.bfloat16)
        out[name] = t.reshape(shape).clone()
    return out, meta
