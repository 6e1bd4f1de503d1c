"""The scheduler: one generation per share of cores, others wait in order and are told so."""

from app.llm.catalogue import Catalogue
from app.llm.scheduler import Finished, GenerationRequest, Queued, Scheduler
from app.llm.types import ChatMessage, Outcome, Text
from tests.fakes import ScriptedEngine


def scheduler_with(engine, slots=1) -> Scheduler:
    return Scheduler(Catalogue([engine], "tiny"), slots=slots)


def request(key: int) -> GenerationRequest:
    return GenerationRequest(key=key, user_id=1, model_id="tiny", messages=[ChatMessage("user", "hi")])


def drain(job):
    return [e for e in job.events(tick=0.05) if e is not None]


def test_a_second_request_waits_its_turn_and_is_told_its_position():
    engine = ScriptedEngine(words=["a"] * 20, delay=0.01)
    scheduler = scheduler_with(engine)
    first = scheduler.submit(request(1))
    engine.started.wait(2)
    second = scheduler.submit(request(2))
    second_events = drain(second)
    first_events = drain(first)
    assert second_events[0] == Queued(1)
    assert isinstance(first_events[-1], Finished) and isinstance(second_events[-1], Finished)
    assert first.ended.wait(1) and second.ended.wait(1)


def test_cancelling_a_queued_request_ends_it_without_running_it():
    engine = ScriptedEngine(words=["a"] * 50, delay=0.02)
    scheduler = scheduler_with(engine)
    first = scheduler.submit(request(1))
    engine.started.wait(2)
    second = scheduler.submit(request(2))
    assert scheduler.cancel(2, Outcome.DISCONNECTED)
    events = drain(second)
    assert events[-1].outcome == Outcome.DISCONNECTED
    assert not any(isinstance(e, Text) for e in events)
    assert len(engine.requests) == 1
    scheduler.cancel(1, Outcome.STOPPED)
    assert drain(first)[-1].outcome == Outcome.STOPPED


def test_cancel_of_an_unknown_answer_says_so():
    assert scheduler_with(ScriptedEngine()).cancel(99, Outcome.STOPPED) is False


def test_two_slots_run_two_generations_at_once():
    engine = ScriptedEngine(words=["a"] * 10, delay=0.02)
    scheduler = scheduler_with(engine, slots=2)
    jobs = [scheduler.submit(request(k)) for k in (1, 2)]
    results = [drain(job) for job in jobs]
    assert all(not any(isinstance(e, Queued) for e in events) for events in results)
    assert len(engine.requests) == 2


def test_an_engine_crash_becomes_a_failure_not_a_dead_thread():
    engine = ScriptedEngine()

    def crash(*args):
        raise ZeroDivisionError("bug")
        yield

    engine.stream_chat = crash
    scheduler = scheduler_with(engine)
    job = scheduler.submit(request(1))
    events = drain(job)
    assert events[-1].error.code == "generation_failed"
    assert job.ended.wait(1), "the worker ended and let the next job run"
    assert scheduler.active() == 0
