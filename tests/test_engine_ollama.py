"""The Ollama engine against the stand-in: what only Ollama has, and how each failure ends.

Every failure must end the stream within seconds with a code the user's message is chosen
by; the engine keeps working afterwards.
"""

import socket
import threading
import time
import tracemalloc

import pytest

from app.llm.engines.ollama import OllamaEngine
from app.llm.types import (
    ANSWER_MAX_CHARS,
    ANSWER_TOO_LONG,
    ENGINE_BUSY,
    ENGINE_LINE_MAX_BYTES,
    ENGINE_REPLY_TOO_LARGE,
    ENGINE_UNREACHABLE,
    FIRST_TOKEN_TIMEOUT,
    LOAD_TIMEOUT,
    MODEL_NOT_FOUND,
    MODEL_TOO_LARGE,
    STALLED,
    ChatMessage,
    EngineError,
    Final,
    GenerationOptions,
    Phase,
    Text,
    Thinking,
)
from tests.ollama_server import SCRIPTED_ANSWER, SCRIPTED_THINKING

pytestmark = pytest.mark.model
SMOLLM2, THINKER = "smollm2:135m", "deepseek-r1:1.5b"
ASK = [ChatMessage("user", "Name three colours.")]
SHORT = GenerationOptions(max_tokens=8, temperature=0.0, seed=7)


def engine_for(standin, **timeouts) -> OllamaEngine:
    return OllamaEngine(standin.url, list_ttl=0, **timeouts)


def collect(engine, model, options=SHORT, cancel=None):
    return list(engine.stream_chat(model, ASK, options, cancel or threading.Event()))


def failure(engine, model, options=SHORT) -> tuple[EngineError, list, float]:
    """The error a stream ends with, the chunks before it, and how long it took."""
    chunks, started = [], time.perf_counter()
    with pytest.raises(EngineError) as caught:
        for chunk in engine.stream_chat(model, ASK, options, threading.Event()):
            chunks.append(chunk)
    return caught.value, chunks, time.perf_counter() - started


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- what Ollama reports -----------------------------------------------------------------------
def test_ollamas_own_timings_are_kept_with_the_answer(standin):
    stats = collect(engine_for(standin), SMOLLM2)[-1].stats
    timings = stats.engine_timings
    assert {"total_duration", "load_duration", "prompt_eval_count", "eval_count", "eval_duration"} <= set(
        timings
    )
    assert timings["done_reason"] == stats.finish_reason
    assert (
        stats.completion_tokens == timings["eval_count"]
        and stats.prompt_tokens == timings["prompt_eval_count"]
    )
    assert stats.tokens_per_second == pytest.approx(timings["eval_count"] / timings["eval_duration"] * 1e9)


def test_sampling_options_reach_ollama_under_its_own_names(standin):
    options = GenerationOptions(
        max_tokens=5, temperature=0.3, top_k=12, top_p=0.8, repeat_penalty=1.2, seed=3
    )
    collect(engine_for(standin, keep_alive="45m"), SMOLLM2, options)
    body = standin.bodies("/api/chat")[-1]
    assert body["options"] == {
        "temperature": 0.3, "top_k": 12, "top_p": 0.8, "repeat_penalty": 1.2, "num_predict": 5, "seed": 3,
    }  # fmt: skip
    assert body["keep_alive"] == "45m"


def test_the_same_load_time_options_go_with_every_request_so_ollama_never_reloads(standin):
    engine = engine_for(standin)
    for temperature in (0.0, 0.5, 1.0):  # users vary sampling; load-time options stay
        collect(
            engine, SMOLLM2, GenerationOptions(max_tokens=3, temperature=temperature, context=1024, threads=1)
        )
    sent = [
        (b["options"]["num_ctx"], b["options"]["num_thread"], b["keep_alive"])
        for b in standin.bodies("/api/chat")
    ]
    assert sent == [(1024, 1, "30m")] * 3
    assert standin.loads[SMOLLM2] == 1


def test_the_listing_shows_what_is_loaded_and_how_much_memory_it_holds(standin):
    engine = engine_for(standin)
    collect(engine, SMOLLM2)
    models = {m.id: m for m in engine.list_models()}
    assert models[SMOLLM2].loaded and models[SMOLLM2].memory_bytes >= models[SMOLLM2].size_bytes
    assert not models[THINKER].loaded and models[THINKER].thinking and not models[SMOLLM2].thinking
    assert models[THINKER].parameters == "1.8B" and models[THINKER].context_length == 131072
    assert engine.unload(SMOLLM2)
    assert not engine.is_loaded(SMOLLM2)
    unload = standin.bodies("/api/generate")[-1]
    assert unload["model"] == SMOLLM2 and unload["keep_alive"] == 0


# -- thinking ----------------------------------------------------------------------------------
def test_a_reasoning_models_thinking_arrives_apart_from_the_answer(standin):
    chunks = collect(engine_for(standin), THINKER, GenerationOptions(think=True))
    thinking = "".join(c.text for c in chunks if isinstance(c, Thinking))
    answer = "".join(c.text for c in chunks if isinstance(c, Text))
    assert thinking == "".join(SCRIPTED_THINKING) and answer == "".join(SCRIPTED_ANSWER)
    phases = [c.name for c in chunks if isinstance(c, Phase)]
    assert phases == ["loading", "thinking", "answering"]
    stats = chunks[-1].stats
    assert stats.thinking_tokens == len(SCRIPTED_THINKING)
    assert 0 < stats.first_token_seconds < stats.first_answer_seconds <= stats.total_seconds
    assert standin.bodies("/api/chat")[-1]["think"] is True


def test_thinking_switched_off_is_sent_as_ollamas_think_flag(standin):
    chunks = collect(engine_for(standin), THINKER, GenerationOptions(think=False))
    assert standin.bodies("/api/chat")[-1]["think"] is False
    assert not any(isinstance(c, Thinking) for c in chunks)
    assert chunks[-1].stats.first_answer_seconds == chunks[-1].stats.first_token_seconds


def test_think_tags_in_the_text_are_split_off_when_the_host_does_not_split_them(standin):
    chunks = collect(engine_for(standin), THINKER, GenerationOptions(think=None))
    assert "think" not in standin.bodies("/api/chat")[-1]
    assert "".join(c.text for c in chunks if isinstance(c, Thinking)).strip() == "".join(SCRIPTED_THINKING)
    assert "".join(c.text for c in chunks if isinstance(c, Text)) == "".join(SCRIPTED_ANSWER)


def test_a_model_that_cannot_think_is_never_sent_the_think_flag(standin):
    # Ollama refuses `think` for such models with a 400: a user's switch must not break them.
    chunks = collect(engine_for(standin), SMOLLM2, GenerationOptions(max_tokens=4, think=True))
    assert isinstance(chunks[-1], Final) and "think" not in standin.bodies("/api/chat")[-1]


# -- failures ----------------------------------------------------------------------------------
def test_a_host_that_refuses_connections_fails_at_once_and_shows_as_unreachable():
    engine = OllamaEngine(f"http://127.0.0.1:{free_port()}", list_ttl=0, connect_timeout=1.0)
    error, chunks, took = failure(engine, SMOLLM2)
    assert error.code == ENGINE_UNREACHABLE and chunks == [] and took < 1.0 * 3
    assert engine.list_models() == []
    status = engine.status()
    assert not status.reachable and status.detail == "connection refused"


def test_a_host_that_goes_down_keeps_its_models_listed_as_unreachable():
    from tests.ollama_server import OllamaStandIn

    host = OllamaStandIn().start()  # scripted models only: no llama.cpp engine is made
    engine = OllamaEngine(host.url, list_ttl=0, connect_timeout=1.0)
    assert engine.list_models()[1].usable
    host.stop()
    engine.forget_listing()
    models = {m.id: m for m in engine.list_models()}
    assert THINKER in models and not models[THINKER].usable and not models[THINKER].reachable
    assert models[THINKER].problem == "host unreachable: connection refused"
    assert not engine.status().reachable


def test_a_model_too_large_for_the_hosts_memory_is_told_apart(standin):
    standin.fail_with = (500, "model requires more system memory (5.6 GiB) than is available (3.1 GiB)")
    assert failure(engine_for(standin), SMOLLM2)[0].code == MODEL_TOO_LARGE


def test_an_unknown_model_is_reported_as_such(standin):
    error, _, _ = failure(engine_for(standin), "mistral:latest")
    assert error.code == MODEL_NOT_FOUND


def test_a_model_removed_from_the_host_disappears_from_the_listing(standin):
    engine = engine_for(standin)
    assert THINKER in {m.id for m in engine.list_models()}
    del standin.models[THINKER]
    assert THINKER not in {m.id for m in engine.list_models()}
    assert failure(engine, THINKER)[0].code == MODEL_NOT_FOUND


def test_a_full_ollama_queue_is_reported_as_busy(standin):
    standin.busy = True
    error, _, took = failure(engine_for(standin), SMOLLM2)
    assert error.code == ENGINE_BUSY and took < 3
    standin.busy = False
    assert isinstance(collect(engine_for(standin), SMOLLM2)[-1], Final)


def test_a_stream_that_goes_quiet_ends_after_the_stall_timeout(standin):
    standin.stall_after = 2
    error, chunks, took = failure(
        engine_for(standin, stall_timeout=1.0), SMOLLM2, GenerationOptions(max_tokens=50)
    )
    print(f"stall noticed after {took:.2f} s (timeout 1 s)")
    assert error.code == STALLED and error.values["seconds"] == 1
    assert sum(isinstance(c, Text) for c in chunks) == 2 and took < 1.0 * 3 + 2
    assert standin.cancelled_event.wait(2), "the stalled request's connection was left open"


def test_a_loaded_model_that_never_starts_ends_after_the_first_token_timeout(standin):
    engine = engine_for(standin, first_token_timeout=1.0)
    collect(engine, THINKER)  # now loaded
    standin.stall_after = 0
    error, chunks, took = failure(engine, THINKER)
    print(f"first-token timeout noticed after {took:.2f} s (timeout 1 s)")
    assert error.code == FIRST_TOKEN_TIMEOUT and [c.name for c in chunks] == ["prompt"] and took < 3


def test_a_slow_load_says_loading_at_once_and_only_the_load_timeout_makes_it_an_error(standin):
    standin.load_delay = 1.5
    engine = engine_for(standin, first_token_timeout=0.5, load_timeout=10)
    chunks = collect(engine, THINKER)  # longer than the first-token timeout: still fine
    assert chunks[0] == Phase("loading") and isinstance(chunks[-1], Final)
    assert chunks[-1].stats.load_seconds >= 1.5
    engine.unload(THINKER)
    error, chunks, took = failure(engine_for(standin, load_timeout=0.5), THINKER)
    assert error.code == LOAD_TIMEOUT and chunks == [Phase("loading")] and took < 0.5 * 3


def test_changed_load_time_options_mean_a_reload_so_the_user_sees_loading(standin):
    # The admin changed the context size: Ollama reloads, and the load timeout applies.
    engine = engine_for(standin)
    collect(engine, SMOLLM2, GenerationOptions(max_tokens=2, context=1024))
    assert collect(engine, SMOLLM2, GenerationOptions(max_tokens=2, context=1024))[0] == Phase("prompt")
    assert collect(engine, SMOLLM2, GenerationOptions(max_tokens=2, context=2048))[0] == Phase("loading")
    assert standin.loads[SMOLLM2] == 2


def test_leaving_the_stream_while_the_model_thinks_closes_the_connection(standin):
    chunks = engine_for(standin).stream_chat(THINKER, ASK, GenerationOptions(think=True), threading.Event())
    assert isinstance(next(c for c in chunks if isinstance(c, Thinking)), Thinking)
    chunks.close()  # what the scheduler does when Stop comes before the answer
    assert standin.cancelled_event.wait(1.0 * 3), "Ollama was not told the client went away"


def test_stop_closes_the_connection_so_ollama_stops_generating(standin):
    cancel, stopped_at = threading.Event(), 0.0
    for chunk in engine_for(standin).stream_chat(SMOLLM2, ASK, GenerationOptions(max_tokens=300), cancel):
        if isinstance(chunk, Text) and not cancel.is_set():
            cancel.set()
            stopped_at = time.perf_counter()
    assert standin.cancelled_event.wait(1.0 * 3), "Ollama was not told the client went away"
    print(f"Ollama stopped generating {(time.perf_counter() - stopped_at) * 1000:.0f} ms after Stop")


def test_an_ollama_on_this_machine_shares_its_cores_and_a_remote_one_does_not():
    from app.llm.engines.ollama import is_this_machine

    assert all(is_this_machine(h) for h in ("127.0.0.1", "localhost", "::1", "0.0.0.0", "127.0.1.1"))
    assert not any(is_this_machine(h) for h in ("10.0.0.7", "gpu-server.example"))
    here = OllamaEngine("http://127.0.0.1:11434", parallel=4).claim(SMOLLM2, SHORT)
    assert (here.pool, here.seats, here.local) == ("ollama@127.0.0.1:11434/smollm2:135m", 4, True)
    far = OllamaEngine("http://10.0.0.7:11434", parallel=2).claim(SMOLLM2, SHORT)
    assert (far.pool, far.seats, far.local) == ("ollama@10.0.0.7:11434", 2, False)


def test_an_ollama_on_this_machine_is_measured_through_its_processes_found_by_name():
    import psutil

    here = psutil.Process().name()  # stands for "ollama": this test's own process
    assert psutil.Process().pid in {
        p.pid for p in OllamaEngine("http://127.0.0.1:1", process_pattern=here).processes()
    }
    assert OllamaEngine("http://127.0.0.1:1", process_pattern="^no-such-program$").processes() is None
    assert OllamaEngine("http://10.0.0.7:11434", process_pattern=here).processes() is None  # remote: unknown


# -- what is read from a host is bounded ---------------------------------------------------------
def test_a_host_sending_200_mb_without_a_line_break_ends_the_answer_without_holding_it(standin):
    standin.flood_bytes = 200 * 1024 * 1024
    engine = engine_for(standin)
    tracemalloc.start()
    try:
        error, chunks, took = failure(engine, THINKER)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"a 200 MB line: ended after {took:.2f} s, Python memory peak {peak / 1e6:.1f} MB")
    assert error.code == ENGINE_REPLY_TOO_LARGE and not any(isinstance(c, Text) for c in chunks)
    assert peak < 20 * ENGINE_LINE_MAX_BYTES, "held no more than a bounded line"
    standin.flood_bytes = 0
    assert isinstance(collect(engine, THINKER)[-1], Final), "the host is used again"


def test_a_10_mb_answer_from_a_host_ends_as_an_error_at_the_answers_bound(standin):
    from app.llm.catalogue import Catalogue
    from app.llm.scheduler import Failed, GenerationRequest, Scheduler

    standin.script = ["x" * 100_000] * 100  # 10 MB, in lines well under the line bound
    engine = engine_for(standin)
    scheduler = Scheduler(Catalogue([engine], THINKER))
    job = scheduler.submit(GenerationRequest(key="big", user_id=1, model_id=THINKER, messages=ASK))
    events = [e for e in job.events(tick=0.1) if e is not None]
    kept = "".join(e.text for e in events if isinstance(e, Text))
    assert isinstance(events[-1], Failed) and events[-1].error.code == ANSWER_TOO_LONG
    assert len(kept) == ANSWER_MAX_CHARS
