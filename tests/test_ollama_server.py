"""The Ollama stand-in speaks the protocol as the official `ollama` client reads it."""

import threading
import time

import httpx
import ollama
import pytest

from tests.ollama_server import SCRIPTED_ANSWER, SCRIPTED_THINKING, OllamaStandIn

pytestmark = pytest.mark.model
SMOLLM2 = "smollm2:135m"
THINKER = "deepseek-r1:1.5b"
ASK = [{"role": "user", "content": "Name three colours."}]
GREEDY = {"temperature": 0, "seed": 7, "num_predict": 16}


@pytest.fixture
def server(standin):
    return standin


@pytest.fixture
def client(server):
    return ollama.Client(server.url, timeout=20)


def test_lists_models_and_its_version(server, client):
    models = {m.model: m for m in client.list().models}
    assert set(models) == {SMOLLM2, THINKER}
    assert models[SMOLLM2].details.family == "llama"
    assert models[SMOLLM2].details.quantization_level == "Q4_1"
    assert models[SMOLLM2].size > 50_000_000  # the GGUF file's size
    assert models[THINKER].size == 1117322599
    assert client.ps().models == []
    assert httpx.get(f"{server.url}/api/version").json() == {"version": "0.12.6"}


def test_show_gives_capabilities_and_context_length(client):
    smollm2, thinker = client.show(SMOLLM2), client.show(THINKER)
    assert smollm2.capabilities == ["completion"]
    assert smollm2.modelinfo["llama.context_length"] == 8192
    assert thinker.capabilities == ["completion", "thinking"]
    assert thinker.modelinfo["qwen2.context_length"] == 131072
    with pytest.raises(ollama.ResponseError) as caught:
        client.show("missing:1b")
    assert caught.value.status_code == 404


def test_streamed_chat_gives_real_tokens_then_final_statistics(server, client):
    parts = list(client.chat(SMOLLM2, messages=ASK, options=GREEDY, stream=True))
    *chunks, final = parts
    streamed = "".join(p.message.content for p in chunks)
    assert len(chunks) >= 5 and streamed.strip() and not any(p.done for p in chunks)
    assert final.done and final.done_reason in ("stop", "length") and final.message.content == ""
    assert 0 < final.eval_count <= 16 and final.prompt_eval_count > 5
    assert final.total_duration >= final.load_duration > 0 and final.eval_duration > 0
    # The same greedy request, not streamed: one object with the whole answer.
    whole = client.chat(SMOLLM2, messages=ASK, options=GREEDY, stream=False)
    assert whole.done and whole.message.content == streamed
    (running,) = client.ps().models
    assert running.model == SMOLLM2 and running.context_length == 4096 and running.size > 98_000_000
    assert server.loads[SMOLLM2] == 1
    assert server.bodies("/api/chat")[0]["options"] == GREEDY


def test_other_load_time_options_reload_the_model_after_a_load_delay(server, client):
    server.load_delay = 0.3
    first = threading.Thread(target=client.chat, args=(THINKER, ASK), kwargs={"options": {"num_ctx": 2048}})
    first.start()
    time.sleep(0.15)
    assert client.ps().models == []  # not listed while loading
    first.join()
    assert [m.context_length for m in client.ps().models] == [2048]
    # Same load-time options (a different keep_alive does not count): no reload.
    again = client.chat(THINKER, ASK, options={"num_ctx": 2048, "num_predict": 2}, keep_alive="1h")
    assert server.loads[THINKER] == 1 and again.load_duration < 0.3e9
    reloaded = client.chat(THINKER, ASK, options={"num_ctx": 1024, "num_predict": 2})
    assert server.loads[THINKER] == 2 and reloaded.load_duration >= 0.3e9
    assert [m.context_length for m in client.ps().models] == [1024]


def test_failures_raise_response_errors_with_ollama_status_codes(server, client):
    def status_of(call) -> tuple[int, str]:
        with pytest.raises(ollama.ResponseError) as caught:
            call()
        return caught.value.status_code, caught.value.error

    assert status_of(lambda: client.chat("missing:1b", ASK)) == (
        404,
        'model "missing:1b" not found, try pulling it first',
    )
    assert status_of(lambda: client.chat(SMOLLM2, ASK, think=True)) == (
        400,
        '"smollm2:135m" does not support thinking',
    )
    del server.models[THINKER]  # the model disappears from its host
    assert [m.model for m in client.list().models] == [SMOLLM2]
    assert status_of(lambda: client.chat(THINKER, ASK))[0] == 404
    assert httpx.post(f"{server.url}/api/chat", json={"messages": ASK}).json() == {
        "error": "model is required"
    }
    assert httpx.post(f"{server.url}/api/chat", content=b"{not json").status_code == 400
    server.busy = True
    assert status_of(lambda: client.chat(SMOLLM2, ASK))[0] == 503


def test_thinking_model_streams_its_reasoning_apart_only_when_asked(client):
    def answer(think):
        parts = list(client.chat(THINKER, ASK, think=think, stream=True))
        thinking = "".join(p.message.thinking or "" for p in parts)
        return thinking, "".join(p.message.content for p in parts), parts[-1].eval_count

    thought, said, count = answer(True)
    assert thought == "".join(SCRIPTED_THINKING) and said == "".join(SCRIPTED_ANSWER)
    assert count == len(SCRIPTED_THINKING) + len(SCRIPTED_ANSWER)
    assert answer(False)[:2] == ("", "".join(SCRIPTED_ANSWER))
    thought, said, _ = answer(None)  # not said: inline, as older Ollama did
    assert (
        thought == "" and said.startswith("<think>\n") and "</think>\n\n" + "".join(SCRIPTED_ANSWER) in said
    )


def test_keep_alive_zero_unloads_the_model(client):
    assert client.chat(THINKER, messages=[]).done_reason == "load"
    assert [m.model for m in client.ps().models] == [THINKER]
    unloaded = client.chat(THINKER, messages=[], keep_alive=0)
    assert unloaded.done and unloaded.done_reason == "unload" and unloaded.message.content == ""
    assert client.ps().models == []
    assert client.generate(SMOLLM2, keep_alive="0s").done_reason == "unload"


def test_client_leaving_mid_stream_cancels_the_generation(server, client):
    long_answer = {"num_predict": 400, "temperature": 0}
    stream = client.chat(
        SMOLLM2, [{"role": "user", "content": "Count from 1 to 200."}], options=long_answer, stream=True
    )
    for _ in range(3):
        next(stream)
    stream.close()  # closes the connection, as the product's Stop does
    assert server.cancelled_event.wait(5) and server.cancelled == 1
    # The model's queue moved on: the next request is answered.
    assert client.chat(SMOLLM2, ASK, options={"num_predict": 2}).done


def test_stalled_stream_is_released_by_the_client_leaving_or_by_stop(server):
    server.stall_after = 2
    impatient = ollama.Client(server.url, timeout=0.5)
    with pytest.raises(httpx.ReadTimeout):
        list(impatient.chat(THINKER, ASK, stream=True))
    assert server.stalled.is_set() and server.cancelled_event.wait(2)

    lone = OllamaStandIn().start()  # the scripted model only: no llama.cpp engine is made
    lone.stall_after = 0
    failures = []
    reader = threading.Thread(target=lambda: failures.append(_read_all(ollama.Client(lone.url))))
    reader.start()
    assert lone.stalled.wait(5)
    started = time.perf_counter()
    lone.stop()
    assert time.perf_counter() - started < 2
    reader.join(5)
    assert failures and isinstance(failures[0], httpx.TransportError)  # cut, not a clean end


def _read_all(client: ollama.Client) -> Exception | None:
    try:
        list(client.chat(THINKER, ASK, stream=True))
    except Exception as exc:
        return exc
    return None
