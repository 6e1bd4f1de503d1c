"""What is true of one engine is true of all: the same tests on llama-server, on llama.cpp in
process and on Ollama.

llama-server is llama.cpp's own server, started by the engine; the in-process engine runs
SmolLM2 in this process; "Ollama" is the stand-in in tests/ollama_server.py, which serves the
same model's real tokens over Ollama's HTTP API, read by the official client.
"""

import json
import threading
import time

import pytest

from app.llm.engines.llamacpp import LlamaCppEngine
from app.llm.engines.llamaserver import LlamaServerEngine
from app.llm.engines.ollama import OllamaEngine
from app.llm.types import MODEL_NOT_FOUND, ChatMessage, EngineError, Final, GenerationOptions, Phase, Text
from config import Config

pytestmark = pytest.mark.model
GREEDY = GenerationOptions(max_tokens=40, temperature=0.0, seed=7)
ASK = [ChatMessage("user", "Name three colours.")]


@pytest.fixture(scope="module")
def embedded(tmp_path_factory) -> LlamaCppEngine:
    return LlamaCppEngine(tmp_path_factory.mktemp("models"), threads=2, context=1024)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("llamaserver")
    engine = LlamaServerEngine(
        folder / "models", Config.LLAMA_SERVER_BIN, folder / "run", threads=2, context=1024
    )
    yield engine
    engine.close()


@pytest.fixture(params=["llama-server", "llama.cpp", "ollama"])
def subject(request, embedded):
    """(engine, the SmolLM2 model's id on it)."""
    if request.param == "llama-server":
        if not Config.LLAMA_SERVER_BIN.is_file():  # pragma: no cover - scripts/setup installs it
            pytest.skip("no llama-server (scripts/setup builds it)")
        return request.getfixturevalue("served"), "SmolLM2-135M-Instruct.Q4_1"
    if request.param == "llama.cpp":
        return embedded, "SmolLM2-135M-Instruct.Q4_1"
    standin = request.getfixturevalue("standin")
    return OllamaEngine(standin.url, list_ttl=0), "smollm2:135m"


def run(engine, model, options=GREEDY, cancel=None, messages=ASK):
    chunks = list(engine.stream_chat(model, messages, options, cancel or threading.Event()))
    assert isinstance(chunks[-1], Final) and sum(isinstance(c, Final) for c in chunks) == 1
    return chunks, "".join(c.text for c in chunks if isinstance(c, Text)), chunks[-1].stats


def test_an_answer_streams_in_many_pieces_then_its_figures(subject):
    engine, model = subject
    chunks, text, stats = run(engine, model)
    assert sum(isinstance(c, Text) for c in chunks) >= 5 and text.strip()
    assert stats.prompt_tokens > 5 and stats.completion_tokens >= 5
    assert 0 < stats.first_token_seconds <= stats.total_seconds
    assert stats.tokens_per_second > 0 and stats.finish_reason in ("stop", "length")
    assert stats.engine == engine.name


def test_the_longest_answer_setting_bounds_the_answer(subject):
    engine, model = subject
    _, _, stats = run(engine, model, GenerationOptions(max_tokens=6, temperature=0.0, seed=7))
    assert stats.completion_tokens <= 6 and stats.finish_reason == "length"


def test_same_seed_and_zero_temperature_give_the_same_answer(subject):
    engine, model = subject
    assert run(engine, model)[1] == run(engine, model)[1]


def test_stop_ends_the_answer_at_once_and_keeps_what_was_written(subject):
    engine, model = subject
    cancel = threading.Event()
    pieces, stopped_at = [], 0.0
    long_answer = GenerationOptions(max_tokens=400, temperature=0.0, seed=7)
    for chunk in engine.stream_chat(model, [ChatMessage("user", "Tell a long story.")], long_answer, cancel):
        if isinstance(chunk, Text):
            pieces.append(chunk.text)
            if len(pieces) == 3:
                cancel.set()
                stopped_at = time.perf_counter()
        if isinstance(chunk, Final):
            took = time.perf_counter() - stopped_at
            print(f"{engine.name}: the stream ended {took * 1000:.0f} ms after Stop")
            assert chunk.stats.finish_reason == "cancelled"
            assert took < 1.0 * 3  # the rule is one second; a 3x margin for a noisy machine
    assert 3 <= len(pieces) <= 5


def test_an_unknown_model_is_a_clear_error(subject):
    engine, _ = subject
    with pytest.raises(EngineError) as caught:
        run(engine, "no-such-model")
    assert caught.value.code == MODEL_NOT_FOUND


def test_the_listing_describes_the_model_without_loading_it(subject):
    engine, model = subject
    engine.unload(model)
    info = next(m for m in engine.list_models() if m.id == model)
    assert info.usable and not info.loaded and info.memory_bytes == 0
    assert info.size_bytes > 50_000_000
    assert (info.family, info.parameters, info.quantization) == ("llama", "135M", "Q4_1")
    assert info.context_length == 8192
    # A token of context, for the benchmark page's fit: 30 layers, 3 KV heads of 64, f16 K and V
    assert info.kv_bytes_per_token == 30 * 3 * (64 + 64) * 2
    assert info.load_context > 0


def test_a_model_not_loaded_says_loading_then_stays_loaded_until_unloaded(subject):
    engine, model = subject
    engine.unload(model)
    assert not engine.is_loaded(model)
    chunks, _, _ = run(engine, model, GenerationOptions(max_tokens=4, temperature=0.0, seed=7))
    phases = [c.name for c in chunks if isinstance(c, Phase)]
    assert phases[0] == "loading" and "answering" in phases
    assert engine.is_loaded(model)
    info = next(m for m in engine.list_models() if m.id == model)
    assert info.loaded and info.memory_bytes > info.size_bytes * 0.5
    assert engine.unload(model) and not engine.is_loaded(model)


def test_the_engine_says_it_works(subject):
    engine, _ = subject
    status = engine.status()
    assert status.reachable and status.version and status.engine == engine.name


def test_an_answer_asked_for_a_json_schema_is_json_that_follows_it(subject):
    """Structured output (the benchmark's judge): the answer parses and has the fields asked for."""
    engine, model = subject
    schema = {
        "type": "object",
        "properties": {
            "score": {"type": "integer", "minimum": 1, "maximum": 10},
            "reason": {"type": "string"},
        },
        "required": ["score", "reason"],
    }
    options = GenerationOptions(max_tokens=80, temperature=0.0, seed=7, json_schema=json.dumps(schema))
    ask = [ChatMessage("user", "Rate the colour blue from 1 to 10, as JSON with a score and a reason.")]
    _, text, stats = run(engine, model, options, messages=ask)
    if stats.finish_reason == "length":  # a tiny model may ramble inside the reason string
        pytest.skip(f"the answer did not end within 80 tokens: {text!r}")
    verdict = json.loads(text)
    assert isinstance(verdict["score"], int) and isinstance(verdict["reason"], str)
