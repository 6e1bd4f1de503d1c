"""Every answer is measured: its share of its engine's CPU, and one record per answer."""

import threading
import time

import psutil
import sqlalchemy as sa

from app.extensions import db
from app.metrics.sampler import CpuShares
from app.models import Generation
from tests.patience import patience
from tests.test_chat_web import JSON, new_conversation, send, slow_answer


def burn(seconds: float) -> None:
    end = time.process_time() + seconds  # CPU time of this process, i.e. of this busy thread here
    while time.process_time() < end:
        pass


def test_an_answer_alone_gets_all_the_cpu_its_engine_spends():
    meter = CpuShares(interval=0.1)
    meter.begin("a", "pool", lambda: [psutil.Process()])
    worker = threading.Thread(target=burn, args=(1.0,))
    worker.start()
    worker.join()
    usage = meter.end("a")
    print(f"1.0 s of CPU burnt, counted {usage['process_cpu_seconds']:.3f} s")
    assert 0.9 <= usage["process_cpu_seconds"] <= 1.2
    assert (
        usage["samples"] >= 3 and usage["process_cpu_percent_peak"] >= usage["process_cpu_percent_mean"] > 0
    )
    assert usage["process_rss_peak_bytes"] > 10_000_000 and usage["machine_memory_used_peak_bytes"] > 0
    assert 0 < usage["machine_cpu_percent_peak"] <= 100


def test_answers_written_together_share_the_engines_cpu_by_the_tokens_each_processed():
    meter = CpuShares(interval=0.1)
    before = sum(psutil.Process().cpu_times()[:2])
    meter.begin("three", "pool", lambda: [psutil.Process()])
    meter.begin("one", "pool", lambda: [psutil.Process()])
    # Three tokens for one answer, one for the other, at every step of 10 ms of CPU, as an engine
    # reports them while it works: whenever the samples fall (a busy machine delays them, and
    # stretches the steps), each one splits CPU spent while tokens in that proportion were made.
    for _ in range(80):
        meter.work("three", 3)
        meter.work("one", 1)
        burn(0.01)
    three, one = meter.end("three"), meter.end("one")
    spent = sum(psutil.Process().cpu_times()[:2]) - before
    shares = three["process_cpu_seconds"], one["process_cpu_seconds"]
    print(f"process: {spent:.3f} s; shares {shares[0]:.3f} + {shares[1]:.3f} s")
    assert abs(sum(shares) - spent) <= 0.05 * spent + 0.02
    assert 2.0 <= shares[0] / shares[1] <= 4.5


def test_a_remote_engines_cpu_and_memory_stay_unknown_never_zero():
    meter = CpuShares(interval=0.05)
    meter.begin("far", "remote", lambda: None)
    time.sleep(0.1)
    usage = meter.end("far")
    assert all(value is None for name, value in usage.items() if name != "samples")


def records(app) -> list[Generation]:
    with app.app_context():
        return list(db.session.scalars(sa.select(Generation).order_by(Generation.id)))


def test_each_answer_leaves_one_record_with_its_figures(app, signed_in):
    conversation_id = new_conversation(signed_in)
    response = send(signed_in, conversation_id, "Dis bonjour")
    response.get_data()
    [record] = records(app)
    assert record.message_id == int(response.headers["X-Message-Id"])
    assert (record.conversation_id, record.model, record.outcome) == (conversation_id, "tiny", "complete")
    assert record.completion_tokens == 4 and record.parameters["temperature"] == 0.7
    assert 0 < record.first_token_seconds <= record.first_answer_seconds <= record.total_seconds
    assert record.process_cpu_seconds is None  # the scripted engine names no process: unknown
    assert record.concurrent == 1


def test_a_stopped_answer_is_recorded_as_stopped(app, signed_in, engine):
    slow_answer(engine, 1000)  # 20 s: stopped long before its end, however busy the machine
    conversation_id = new_conversation(signed_in)
    stream = threading.Thread(target=lambda: send(signed_in, conversation_id, "long").get_data())
    stream.start()
    assert engine.started.wait(patience(5))
    message_id = signed_in.get(f"/conversations/{conversation_id}/messages").json["messages"][-1]["id"]
    signed_in.post(f"/messages/{message_id}/stop", headers=JSON)
    stream.join(patience(15))
    assert not stream.is_alive(), "Stop ended the answer"
    assert [r.outcome for r in records(app)] == ["stopped"]


def test_an_answer_whose_conversation_is_deleted_mid_way_keeps_its_record(app, signed_in, monkeypatch):
    """The conversation's deletion lands between the answer's last save and its measurements:
    the record stays, without its links (the dashboard counts it)."""
    from app.answers import saving
    from app.models import Conversation

    conversation_id = new_conversation(signed_in)
    real_record = saving.record

    def deleted_meanwhile(live, saved):
        with db.engine.begin() as connection:  # another request's transaction
            connection.execute(sa.delete(Conversation).where(Conversation.id == conversation_id))
        real_record(live, saved)

    monkeypatch.setattr(saving, "record", deleted_meanwhile)
    send(signed_in, conversation_id, "Dis bonjour").get_data()
    kept = records(app)
    assert [(r.outcome, r.message_id, r.conversation_id) for r in kept] == [("complete", None, None)]
    assert kept[0].completion_tokens == 4 and kept[0].total_seconds > 0


def test_a_machine_busy_throughout_is_counted_100_percent_busy_never_more(monkeypatch):
    # The machine's busy and total CPU seconds are sums of floats: on a machine busy throughout
    # (a loaded test run) their differences came out at 100.00000000727596 %.
    from app.metrics import sampler

    readings = iter(
        [(1000.0, 2000.0)] + [(1000.0 + n * 0.30000000000000004, 2000.0 + n * 0.3) for n in range(1, 99)]
    )
    monkeypatch.setattr(sampler, "_machine_busy", lambda: next(readings))
    meter = CpuShares(interval=60)  # sampled only by the test
    meter.begin("a", "pool", lambda: [psutil.Process()])
    usage = meter.end("a")
    assert usage["machine_cpu_percent_peak"] == 100
