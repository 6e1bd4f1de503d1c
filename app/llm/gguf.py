"""What a GGUF model file says about itself, read from its header without loading the model.

The layout (ggml's docs/gguf.md, versions 2 and 3, little-endian):

    header       magic "GGUF", u32 version, u64 tensor_count, u64 kv_count
    kv_count  x  string key, u32 value_type, value
    tensor_count x  string name, u32 n_dims, u64 dims[n_dims], u32 ggml_type, u64 offset
    padding to general.alignment (32 by default), then the tensor data

A string is a u64 byte length followed by UTF-8 bytes; an array is a u32 element type, a u64
element count, then the elements. The tokenizer arrays hold up to a few hundred thousand strings:
they are stepped over without building Python objects. Every length is checked against the file
size, so a corrupt header raises `GGUFError` rather than a MemoryError or a struct.error.
"""

from __future__ import annotations

import struct
import threading
from dataclasses import dataclass
from pathlib import Path

__all__ = ["GGUFError", "GGUFFacts", "read_facts"]


class GGUFError(ValueError):
    """The file cannot be read as a GGUF model; the message says why, in one short sentence."""


# llama.h `enum llama_ftype`, as llama.cpp names it (values 4-6 and 33-35 are retired).
QUANTIZATION_NAMES = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    7: "Q8_0",
    8: "Q5_0",
    9: "Q5_1",
    10: "Q2_K",
    11: "Q3_K_S",
    12: "Q3_K_M",
    13: "Q3_K_L",
    14: "Q4_K_S",
    15: "Q4_K_M",
    16: "Q5_K_S",
    17: "Q5_K_M",
    18: "Q6_K",
    19: "IQ2_XXS",
    20: "IQ2_XS",
    21: "Q2_K_S",
    22: "IQ3_XS",
    23: "IQ3_XXS",
    24: "IQ1_S",
    25: "IQ4_NL",
    26: "IQ3_S",
    27: "IQ3_M",
    28: "IQ2_S",
    29: "IQ2_M",
    30: "IQ4_XS",
    31: "IQ1_M",
    32: "BF16",
    36: "TQ1_0",
    37: "TQ2_0",
    38: "MXFP4",
    39: "NVFP4",
    40: "Q1_0",
    41: "Q2_0",
}


@dataclass(frozen=True)
class GGUFFacts:
    architecture: str  # general.architecture: llama, gemma3, qwen2...
    name: str  # general.name, "" when absent
    parameter_count: int
    quantization: str  # Q4_K_M...; "" when unknown
    context_length: int  # what the model was trained for
    chat_template: str
    block_count: int = 0
    embedding_length: int = 0
    head_count: int = 0
    head_count_kv: int = 0  # as stored; 0 when absent (the model then has no GQA)
    key_length: int = 0
    value_length: int = 0
    weights_bytes: int = 0  # the tensor data: what loading the model maps into memory
    file_size: int = 0

    @property
    def supports_thinking(self) -> bool:
        """Whether the chat template knows the <think> block of reasoning models."""
        return "<think>" in self.chat_template

    def kv_cache_bytes(self, n_ctx: int) -> int:
        """The f16 K and V caches for `n_ctx` tokens; 0 when the header lacks what it takes."""
        if n_ctx <= 0 or self.block_count <= 0 or self.head_count <= 0:
            return 0
        default_len = self.embedding_length // self.head_count
        key_len = self.key_length or default_len
        value_len = self.value_length or default_len
        kv_heads = self.head_count_kv or self.head_count
        return n_ctx * self.block_count * kv_heads * (key_len + value_len) * 2

    def memory_bytes(self, n_ctx: int) -> int:
        """Weights plus KV cache: roughly what the model holds once loaded with `n_ctx` tokens."""
        return self.weights_bytes + self.kv_cache_bytes(n_ctx)


def read_facts(path: Path | str) -> GGUFFacts:
    """The facts of a GGUF file, cached until the file changes (mtime or size)."""
    path = Path(path)
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise GGUFError(f"model file not found: {path.name}") from None
    except OSError as exc:
        raise GGUFError(f"cannot read model file {path.name}: {exc.strerror or exc}") from None
    key = str(path.absolute())
    stamp = (stat.st_mtime_ns, stat.st_size)
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None and cached[0] == stamp:
            return cached[1]
    facts = _read(path, stat.st_size)  # outside the lock: another file may be read meanwhile
    with _cache_lock:
        _cache.pop(key, None)
        while len(_cache) >= _CACHE_SIZE:
            _cache.pop(next(iter(_cache)))  # the oldest entry
        _cache[key] = (stamp, facts)
    return facts


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


_CACHE_SIZE = 256
_cache: dict[str, tuple[tuple[int, int], GGUFFacts]] = {}
_cache_lock = threading.Lock()

_MAGIC = b"GGUF"
_SUPPORTED_VERSIONS = (2, 3)
_CHUNK = 1 << 20

# Metadata value types: fixed sizes, and how the few we decode are unpacked.
_STRING, _ARRAY = 8, 9
_FIXED_SIZE = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_FORMAT = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_MAX_DIMS = 8  # ggml has 4 today
_MAX_KEY = 65535  # the spec's limit on a key's length
_MAX_NESTING = 16  # arrays of arrays of...: none in practice
_MAX_LAYERS = 4096  # per-layer arrays are read, so they are kept small
_WANTED_STRINGS = ("general.architecture", "general.name", "tokenizer.chat_template")


def _past_end(what: str) -> GGUFError:
    return GGUFError(f"truncated or corrupt GGUF header: {what} runs past the end of the file")


def _read(path: Path, size: int) -> GGUFFacts:
    try:
        with open(path, "rb", buffering=0) as file:
            cursor = _Cursor(file, size)
            return _parse(cursor, size)
    except OSError as exc:
        raise GGUFError(f"cannot read model file {path.name}: {exc.strerror or exc}") from None


class _Cursor:
    """Reads forward through the file in 1 MiB windows; skipping costs no I/O beyond a seek."""

    def __init__(self, file, size: int) -> None:
        self.file = file
        self.size = size
        self.buf = b""
        self.pos = 0  # in buf
        self.base = 0  # file offset of buf[0]

    @property
    def offset(self) -> int:
        return self.base + self.pos

    def _fill(self, n: int) -> None:
        """Make n bytes available at self.pos, or fail as truncated."""
        self.base += self.pos
        self.pos = 0
        if self.base + n > self.size:
            raise GGUFError("truncated GGUF header")
        self.file.seek(self.base)
        self.buf = self.file.read(max(n, _CHUNK))
        if len(self.buf) < n:
            raise GGUFError("truncated GGUF header")

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.buf):
            self._fill(n)
        start = self.pos
        self.pos += n
        return self.buf[start : self.pos]

    def u32(self) -> int:
        if self.pos + 4 > len(self.buf):
            self._fill(4)
        value = _U32.unpack_from(self.buf, self.pos)[0]
        self.pos += 4
        return value

    def u64(self) -> int:
        if self.pos + 8 > len(self.buf):
            self._fill(8)
        value = _U64.unpack_from(self.buf, self.pos)[0]
        self.pos += 8
        return value

    def length(self, count: int, item_size: int, what: str) -> int:
        """`count` items of at least `item_size` bytes must fit in what is left of the file."""
        if count * item_size > self.size - self.offset:
            raise _past_end(f"{what} {count:,}")
        return count

    def skip(self, n: int) -> None:
        self.pos += n  # may leave the window: the next read refills from base + pos
        if self.offset > self.size:
            raise GGUFError("truncated GGUF header")

    def string(self) -> str:
        n = self.length(self.u64(), 1, "a string of length")
        return self.take(n).decode("utf-8", errors="replace")

    def key(self) -> str:
        n = self.u64()
        if n > _MAX_KEY:
            raise GGUFError(f"corrupt GGUF header: a key of length {n:,}")
        return self.take(self.length(n, 1, "a key of length")).decode("utf-8", errors="replace")

    def skip_strings(self, count: int) -> None:
        """Step over `count` strings: the hot loop over tokenizer vocabularies.

        The loop body is kept to one addition: running off the window shows up as an error from
        unpack_from, and only then is the window refilled and the position checked.
        """
        unpack = _U64.unpack_from
        while count:
            buf, pos = self.buf, self.pos
            done = 0
            try:
                for done in range(count):  # noqa: B007 - read after a struct.error
                    pos += 8 + unpack(buf, pos)[0]
                else:
                    done = count
            except (struct.error, OverflowError):  # off the window, or far off after a bogus length
                pass
            self.pos = pos
            count -= done
            if self.offset > self.size:
                raise _past_end("a string")
            if count:
                self._fill(8)

    def value(self, kind: int):
        """A scalar value, decoded."""
        fmt = _FORMAT.get(kind)
        if fmt is None:
            raise GGUFError(f"corrupt GGUF header: unknown value type {kind}")
        return struct.unpack("<" + fmt, self.take(_FIXED_SIZE[kind]))[0]

    def skip_array(self, depth: int = 0) -> None:
        kind, count = self.u32(), self.u64()
        self.skip_items(kind, count, depth)

    def skip_items(self, kind: int, count: int, depth: int = 0) -> None:
        if kind == _STRING:
            self.skip_strings(self.length(count, 8, "an array of length"))
        elif kind == _ARRAY:
            if depth >= _MAX_NESTING:
                raise GGUFError("corrupt GGUF header: arrays nested too deeply")
            for _ in range(self.length(count, 12, "an array of length")):
                self.skip_array(depth + 1)
        elif kind in _FIXED_SIZE:
            self.skip(_FIXED_SIZE[kind] * self.length(count, _FIXED_SIZE[kind], "an array of length"))
        else:
            raise GGUFError(f"corrupt GGUF header: unknown value type {kind}")

    def numeric_array(self) -> list:
        """A per-layer array of numbers; anything else is stepped over and read as []."""
        kind, count = self.u32(), self.u64()
        if kind not in _FIXED_SIZE or count > _MAX_LAYERS:
            self.skip_items(kind, count)
            return []
        width = _FIXED_SIZE[kind]
        data = self.take(width * self.length(count, width, "an array of length"))
        return list(struct.unpack(f"<{count}{_FORMAT[kind]}", data))


def _parse(cursor: _Cursor, size: int) -> GGUFFacts:
    if size < 4 or cursor.take(4) != _MAGIC:
        raise GGUFError("not a GGUF file")
    version = cursor.u32()
    if version not in _SUPPORTED_VERSIONS:
        if int.from_bytes(version.to_bytes(4, "little"), "big") in _SUPPORTED_VERSIONS:
            raise GGUFError("big-endian GGUF files are not supported")
        raise GGUFError(f"unsupported GGUF version {version}")
    # The smallest tensor info is 24 bytes, the smallest key-value pair 13.
    tensor_count = cursor.length(cursor.u64(), 24, "a tensor count of")
    kv_count = cursor.length(cursor.u64(), 13, "a metadata count of")

    # Scalars are cheap and all kept (the architecture that names the others may come later);
    # strings and arrays are stepped over unless wanted.
    meta: dict[str, object] = {}
    for _ in range(kv_count):
        key = cursor.key()
        kind = cursor.u32()
        if kind == _STRING:
            if key in _WANTED_STRINGS:
                meta[key] = cursor.string()
            else:
                cursor.skip(cursor.length(cursor.u64(), 1, "a string of length"))
        elif kind == _ARRAY:
            # Some architectures give head counts per layer: small arrays of numbers.
            if key.endswith((".attention.head_count", ".attention.head_count_kv")):
                meta[key] = cursor.numeric_array()
            else:
                cursor.skip_array()
        else:
            meta[key] = cursor.value(kind)

    n_elements = 0
    for _ in range(tensor_count):
        cursor.skip(cursor.length(cursor.u64(), 1, "a tensor name of length"))
        n_dims = cursor.u32()
        if n_dims > _MAX_DIMS:
            raise GGUFError(f"corrupt GGUF header: a tensor with {n_dims} dimensions")
        product = 1
        for _ in range(n_dims):
            product *= cursor.u64()
        n_elements += product
        cursor.skip(12)  # ggml type, data offset

    alignment = _int(meta.get("general.alignment"))
    if alignment <= 0:
        alignment = 32  # the spec's default
    data_start = -(-cursor.offset // alignment) * alignment

    arch = meta.get("general.architecture")
    arch = arch if isinstance(arch, str) else ""

    def number(name: str) -> int:
        return _int(meta.get(f"{arch}.{name}"))

    file_type = _int(meta.get("general.file_type"), default=-1)
    name = meta.get("general.name")
    template = meta.get("tokenizer.chat_template")
    return GGUFFacts(
        architecture=arch,
        name=name if isinstance(name, str) else "",
        parameter_count=_int(meta.get("general.parameter_count")) or n_elements,
        quantization=QUANTIZATION_NAMES.get(file_type, ""),
        context_length=number("context_length"),
        chat_template=template if isinstance(template, str) else "",
        block_count=number("block_count"),
        embedding_length=number("embedding_length"),
        head_count=number("attention.head_count"),
        head_count_kv=number("attention.head_count_kv"),
        key_length=number("attention.key_length"),
        value_length=number("attention.value_length"),
        weights_bytes=max(0, size - data_start),
        file_size=size,
    )


def _int(value: object, default: int = 0) -> int:
    """An integer metadata value; for per-layer arrays, the largest. `default` otherwise."""
    if isinstance(value, list):
        value = max((v for v in value if isinstance(v, int) and not isinstance(v, bool)), default=None)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return default
