#!/usr/bin/env python3
"""Generate golden vectors for Hearth's ggml quant code (core/tests/quant_vectors/).

Oracles (all independent of Hearth):
  * gguf-py (`pip install gguf numpy`): numpy dequantizers for every type, numpy quantizers
    for Q4_0/Q8_0.
  * the fixture GGUFs written by llama.cpp (core/tests/fixtures/gguf): real blocks, and real
    llama-quantize output next to the F32 source it was quantized from.
  * optional, ggml itself through ggml-python (`pip install ggml-python`, builds ggml from its
    sdist; build with CMAKE_ARGS="-DGGML_NATIVE=OFF" so the reference C code is compiled
    without FMA contraction): `ggml_quantize_chunk` without an importance matrix runs
    `quantize_row_*_ref`, the deterministic reference quantizers. Skipped when not installed
    (existing ggml vectors are then left as they are).

File format (little-endian): b"HQV1", u32 ggml type id, u32 element count n, u32 byte count m,
m bytes of blocks, n f32. For dequant_*.bin the f32 are the expected dequantized values; for
quantize_*.bin they are the quantizer input and the bytes are the expected output.

Usage: python3 scripts/gen_quant_vectors.py   (from the repository root; deterministic)
"""

from __future__ import annotations

import ctypes
import struct
from pathlib import Path

import gguf
import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGUFReader
from gguf.quants import dequantize, quantize

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "core" / "tests" / "quant_vectors"
FIXTURES = ROOT / "core" / "tests" / "fixtures" / "gguf"
SEED = 20240611
N_BLOCKS = 8

# Byte offsets of the f16 scale fields (d, and dmin/m where present) in each block type.
F16_FIELDS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}
TYPES = [T.F32, T.F16, T.BF16, *F16_FIELDS]


def write(name: str, qtype: T, blocks: bytes, floats: np.ndarray) -> None:
    floats = np.ascontiguousarray(floats, dtype="<f4").ravel()
    head = b"HQV1" + struct.pack("<III", int(qtype), floats.size, len(blocks))
    (OUT / name).write_bytes(head + bytes(blocks) + floats.tobytes())


def sane_f16(rng: np.random.Generator, n: int) -> np.ndarray:
    """Finite f16 scales of realistic size, both signs, with a zero and a subnormal mixed in."""
    v = (rng.standard_normal(n) * 0.02).astype(np.float16)
    v[0] = 0.0
    v[1] = np.float16(3e-6)  # f16 subnormal
    return v


def random_blocks(rng: np.random.Generator, qtype: T) -> bytes:
    if qtype == T.F32:
        return (rng.standard_normal(256) * 3).astype("<f4").tobytes()
    if qtype in (T.F16, T.BF16):
        bits = rng.integers(0, 1 << 16, 256, dtype=np.uint16)
        if qtype == T.F16:  # edge cases: ±0, ±inf, smallest subnormal, largest finite
            bits[:6] = [0x0000, 0x8000, 0x7C00, 0xFC00, 0x0001, 0x7BFF]
        return bits.astype("<u2").tobytes()
    block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, (N_BLOCKS, type_size), dtype=np.uint8)
    for off in F16_FIELDS[qtype]:
        raw[:, off:off + 2] = sane_f16(rng, N_BLOCKS).astype("<f2").view(np.uint8).reshape(-1, 2)
    return raw.tobytes()


def gen_random_dequant(rng: np.random.Generator) -> None:
    for qtype in TYPES:
        blocks = random_blocks(rng, qtype)
        expected = dequantize(np.frombuffer(blocks, dtype=np.uint8), qtype)
        write(f"dequant_random_{qtype.name.lower()}.bin", qtype, blocks, expected)


def gen_fixture_dequant() -> list[str]:
    """First blocks of the first tensor of each non-F32 type found in the llama.cpp fixtures."""
    seen: dict[T, str] = {}
    for path in sorted(FIXTURES.glob("*.gguf")):
        for t in GGUFReader(path).tensors:
            if t.tensor_type == T.F32 or t.tensor_type in seen:
                continue
            block_size, type_size = gguf.GGML_QUANT_SIZES[t.tensor_type]
            n_bytes = min(int(t.n_bytes), (256 // block_size or 1) * type_size * N_BLOCKS)
            blocks = np.asarray(t.data).view(np.uint8).ravel()[:n_bytes].tobytes()
            expected = dequantize(np.frombuffer(blocks, dtype=np.uint8), t.tensor_type)
            write(f"dequant_fixture_{t.tensor_type.name.lower()}.bin", t.tensor_type, blocks, expected)
            seen[t.tensor_type] = f"{path.name} `{t.name}` (data offset {t.data_offset}, first {n_bytes} bytes)"
    return [f"{q.name}: {src}" for q, src in seen.items()]


def quantizer_input(rng: np.random.Generator, n: int) -> np.ndarray:
    """ggml test-quantize-fns' cosine pattern, Gaussian weights, outliers and degenerate blocks."""
    i = np.arange(n, dtype=np.float64)
    x = (0.1 + 2 * np.cos(i + 0.3)).astype(np.float32)
    q = n // 8
    x[q:2 * q] = rng.standard_normal(q) * 0.02  # weight-like
    x[2 * q:3 * q] = rng.uniform(-1, 1, q) * np.where(rng.random(q) < 0.02, 30, 1)  # outliers
    x[3 * q:3 * q + q // 2] = 0.0  # all-zero groups
    x[3 * q + q // 2:4 * q] = 0.75  # constant groups
    x[4 * q:5 * q] = rng.standard_normal(q) * 1e-20  # below GROUP_MAX_EPS
    x[5 * q:6 * q] = np.abs(rng.standard_normal(q))  # all positive
    x[6 * q:7 * q] = np.round(rng.uniform(-8, 8, q)) * 0.25  # exact grid values, ties
    x[7 * q:] = -np.abs(rng.standard_normal(n - 7 * q)) * 5  # all negative
    return x.astype(np.float32)


def gen_ggufpy_quantize(rng: np.random.Generator) -> None:
    x = quantizer_input(rng, 512)
    for qtype in (T.Q4_0, T.Q8_0):
        write(f"quantize_ggufpy_{qtype.name.lower()}.bin", qtype, quantize(x, qtype).tobytes(), x)


def gen_llamacpp_quantize() -> list[str]:
    """llama-quantize output for the F32 fixture's weights (deterministic reference path)."""
    name, n = "blk.0.ffn_gate.weight", 1024
    src = {t.name: t for t in GGUFReader(FIXTURES / "lfm2-dense-h64-f32.gguf").tensors}[name]
    x = np.asarray(src.data, dtype=np.float32).ravel()[:n]
    notes = []
    for qtype, file in ((T.Q4_0, "lfm2-dense-h64-q4_0.gguf"), (T.Q8_0, "lfm2-dense-h64-q8_0.gguf")):
        t = {t.name: t for t in GGUFReader(FIXTURES / file).tensors}[name]
        assert t.tensor_type == qtype, (file, t.tensor_type)
        block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
        blocks = np.asarray(t.data).view(np.uint8).ravel()[: n // block_size * type_size].tobytes()
        write(f"quantize_llamacpp_{qtype.name.lower()}.bin", qtype, blocks, x)
        notes.append(f"{qtype.name}: `{name}` first {n} values of lfm2-dense-h64-f32.gguf -> {file}")
    return notes


def gen_ggml_quantize(rng: np.random.Generator) -> str | None:
    try:
        import ggml  # ggml-python
    except ImportError:
        print("ggml-python not installed: keeping existing quantize_ggml_*.bin")
        return None
    x = quantizer_input(rng, 2048)
    ptr = x.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
    for qtype in (T.Q4_0, T.Q8_0, T.Q4_K, T.Q6_K):
        block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
        out = np.zeros(x.size // block_size * type_size, dtype=np.uint8)
        n = ggml.ggml_quantize_chunk(int(qtype), ptr, out.ctypes.data, 0, 1, x.size, None)
        assert n == out.size
        write(f"quantize_ggml_{qtype.name.lower()}.bin", qtype, out.tobytes(), x)
    from importlib.metadata import version
    return f"ggml-python {version('ggml_python')}"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    gen_random_dequant(rng)
    fixture_notes = gen_fixture_dequant()
    gen_ggufpy_quantize(rng)
    llama_notes = gen_llamacpp_quantize()
    ggml_note = gen_ggml_quantize(np.random.default_rng(SEED + 1))
    from importlib.metadata import version
    readme = OUT / "README.md"
    old = readme.read_text() if readme.exists() else ""
    ggml_line = ggml_note or next(
        (line[len("- ggml: "):] for line in old.splitlines() if line.startswith("- ggml: ")), "not generated")
    readme.write_text(README.format(
        gguf=version("gguf"), numpy=np.__version__, seed=SEED, ggml=ggml_line,
        fixtures="\n".join(f"  - {s}" for s in fixture_notes),
        llama="\n".join(f"  - {s}" for s in llama_notes)))
    print(f"wrote {sum(p.stat().st_size for p in OUT.glob('*.bin'))} bytes to {OUT}")


README = """# Golden vectors for `core/src/quant`

Generated by `scripts/gen_quant_vectors.py` (seed {seed}); do not edit by hand.
Format: `b"HQV1"`, u32 ggml type id, u32 element count n, u32 byte count m, m block bytes,
n little-endian f32 (expected output for `dequant_*`, quantizer input for `quantize_*`).

Provenance:
- gguf: {gguf} (gguf-py, numpy {numpy}): expected values of every `dequant_*` file and the
  bytes of `quantize_ggufpy_*`.
- ggml: {ggml} (`ggml_quantize_chunk` without imatrix = `quantize_row_*_ref`; ggml-base built
  with GGML_NATIVE=OFF, no FMA): bytes of `quantize_ggml_*`.
- `dequant_random_*`: {n} random blocks per type (random quant bytes, finite f16 scales incl.
  zero and subnormal; F16/BF16 random bit patterns incl. inf/NaN).
- `dequant_fixture_*`: real blocks written by llama.cpp, from `core/tests/fixtures/gguf`:
{fixtures}
- `quantize_llamacpp_*`: llama-quantize's bytes for the F32 fixture weights:
{llama}
"""

if __name__ == "__main__":
    README = README.replace("{n}", str(N_BLOCKS))
    main()
