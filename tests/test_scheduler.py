"""The scheduler: fair between users, one budget for the machine's cores, a bounded queue."""

import threading

from app.llm.catalogue import Catalogue
from app.llm.scheduler import Finished, GenerationRequest, Queued, Scheduler
from app.llm.types import ChatMessage, Claim, GenerationOptions, Outcome, Text
from tests.fakes import ScriptedEngine


def scheduler_with(engine, cores=1, **kwargs) -> Scheduler:
    return Scheduler(Catalogue([engine], "tiny"), cores=cores, **kwargs)


def request(key: int, user: int = 1, model: str = "tiny") -> GenerationRequest:
    return GenerationRequest(key=key, user_id=user, model_id=model, messages=[ChatMessage("user", "hi")])


def drain(job):
    return [e for e in job.events(tick=0.05) if e is not None]


class GatedEngine(ScriptedEngine):
    """Each answer waits for the test to let it go: the order answers start in is observable."""

    def __init__(self, claims=None, **kwargs):
        super().__init__(words=["a"], **kwargs)
        self.claims = claims or {}
        self.started_order: list[int] = []  # the user of each answer, as they start
        self.gate = threading.Semaphore(0)
        self.running = 0
        self._count = threading.Lock()

    def claim(self, model_id, options):
        return self.claims.get(model_id, Claim())

    def stream_chat(self, model_id, messages, options, cancel):
        with self._count:
            self.started_order.append(int(messages[0].content))
            self.running += 1
        self.gate.acquire(timeout=5)
        with self._count:
            self.running -= 1
        yield from super().stream_chat(model_id, messages, options, cancel)


def ask(scheduler, key, user, model="tiny"):
    return scheduler.submit(
        GenerationRequest(key=key, user_id=user, model_id=model, messages=[ChatMessage("user", str(user))])
    )


def wait_until(condition, timeout=3.0):
    event = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if condition():
            return True
        event.wait(0.01)
    return False


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
    assert second_events[-1].stats.queue_seconds > 0.1  # the first answer's 20 words, 10 ms apart
    assert first.ended.wait(1) and second.ended.wait(1)


def test_one_users_many_requests_do_not_starve_another_users_one():
    engine = GatedEngine()
    scheduler = scheduler_with(engine)
    jobs = [ask(scheduler, key, user=1) for key in range(1, 5)]  # user 1 asks four times
    assert wait_until(lambda: engine.running == 1)
    jobs.append(ask(scheduler, 9, user=2))  # then user 2 once
    assert wait_until(lambda: len(scheduler._waiting) == 4)
    for _ in range(5):
        engine.gate.release()
    for job in jobs:
        drain(job)
    assert engine.started_order == [1, 2, 1, 1, 1]


def test_queue_positions_count_down_as_answers_finish():
    engine = GatedEngine()
    scheduler = scheduler_with(engine)
    jobs = [ask(scheduler, 1, user=1)]
    assert wait_until(lambda: engine.running == 1)
    jobs += [ask(scheduler, key, user=key) for key in (2, 3)]
    for started in (1, 2, 3):  # one answer at a time, so each position can be seen
        assert wait_until(lambda n=started: len(engine.started_order) == n and engine.running == 1)
        engine.gate.release()
    positions = [[e.position for e in drain(job) if isinstance(e, Queued)] for job in jobs]
    assert positions == [[], [1], [2, 1]]


def test_the_cores_are_one_budget_across_models_and_engines():
    # Two models, each wanting both cores: never at once, though they are different models.
    engine = GatedEngine(claims={"tiny": Claim(cost=2), "other": Claim(cost=2)})
    scheduler = scheduler_with(engine, cores=2)
    first, second = ask(scheduler, 1, user=1, model="tiny"), ask(scheduler, 2, user=2, model="other")
    assert wait_until(lambda: engine.running == 1)
    assert not wait_until(lambda: engine.running == 2, timeout=0.3)
    engine.gate.release()
    engine.gate.release()
    assert isinstance(drain(second)[0], Queued) and isinstance(drain(first)[-1], Finished)


def test_one_thread_answers_share_two_cores_but_a_model_answers_one_at_a_time():
    claims = {"tiny": Claim(cost=1, model_key="tiny"), "other": Claim(cost=1, model_key="other")}
    engine = GatedEngine(claims=claims)
    scheduler = scheduler_with(engine, cores=2)
    jobs = [ask(scheduler, 1, 1, "tiny"), ask(scheduler, 2, 2, "other"), ask(scheduler, 3, 3, "tiny")]
    assert wait_until(lambda: engine.running == 2)  # tiny and other together
    assert sorted(engine.started_order) == [1, 2]  # the second "tiny" waits for the first
    for _ in range(3):
        engine.gate.release()
    assert [isinstance(e, Queued) for e in drain(jobs[2])][0]


def test_a_request_waiting_for_its_busy_model_does_not_hold_the_free_cores():
    claims = {"tiny": Claim(cost=1, model_key="tiny"), "other": Claim(cost=1, model_key="other")}
    engine = GatedEngine(claims=claims)
    scheduler = scheduler_with(engine, cores=2)
    jobs = [ask(scheduler, 1, 1, "tiny")]
    assert wait_until(lambda: engine.running == 1)
    jobs += [ask(scheduler, 2, 2, "tiny"), ask(scheduler, 3, 3, "other")]  # "other" came last
    assert wait_until(lambda: engine.running == 2) and engine.started_order == [1, 3]
    for _ in range(3):
        engine.gate.release()
    for job in jobs:
        drain(job)


def test_a_closed_scheduler_takes_no_new_answer():
    scheduler = scheduler_with(ScriptedEngine())
    scheduler.close()
    assert not scheduler.reserve()
    assert drain(scheduler.submit(request(1)))[-1].outcome == Outcome.INTERRUPTED


def test_a_remote_host_takes_its_own_number_of_requests_beside_the_local_cores():
    claims = {"tiny": Claim(cost=1), "other": Claim(pool="ollama@far:11434")}
    engine = GatedEngine(claims=claims)
    scheduler = scheduler_with(engine, cores=1, pools={"ollama@far:11434": 2})
    jobs = [ask(scheduler, 1, 1, "tiny")] + [ask(scheduler, k, k, "other") for k in (2, 3, 4)]
    assert wait_until(lambda: engine.running == 3)  # 1 local + 2 remote; the 3rd remote waits
    assert not wait_until(lambda: engine.running == 4, timeout=0.3)
    for _ in range(4):
        engine.gate.release()
    for job in jobs:
        assert isinstance(drain(job)[-1], Finished)


def test_the_queue_is_bounded_and_a_released_place_can_be_taken_again():
    scheduler = scheduler_with(ScriptedEngine(), max_jobs=2)
    assert scheduler.reserve() and scheduler.reserve()
    assert not scheduler.reserve()
    scheduler.release()
    assert scheduler.reserve()


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


def test_stop_reaches_a_request_waiting_for_its_model():
    # A model answers one request at a time: the second waits in the scheduler, where Stop finds it.
    claims = {"tiny": Claim(cost=1, model_key="tiny")}
    engine = GatedEngine(claims=claims)
    scheduler = scheduler_with(engine, cores=2)
    first, second = ask(scheduler, 1, 1), ask(scheduler, 2, 2)
    assert wait_until(lambda: engine.running == 1)
    assert scheduler.cancel(2, Outcome.STOPPED)
    assert drain(second)[-1].outcome == Outcome.STOPPED and engine.started_order == [1]
    engine.gate.release()
    drain(first)


def test_cancel_all_ends_waiting_and_running_answers():
    engine = ScriptedEngine(words=["a"] * 200, delay=0.01)
    scheduler = scheduler_with(engine)
    jobs = [scheduler.submit(request(k)) for k in (1, 2)]
    engine.started.wait(2)
    assert scheduler.cancel_all(Outcome.INTERRUPTED) == 2
    assert [drain(job)[-1].outcome for job in jobs] == [Outcome.INTERRUPTED] * 2


def test_cancel_of_an_unknown_answer_says_so():
    assert scheduler_with(ScriptedEngine()).cancel(99, Outcome.STOPPED) is False


def test_an_unknown_model_fails_at_once():
    job = scheduler_with(ScriptedEngine()).submit(request(1, model="nowhere"))
    assert drain(job)[-1].error.code == "model_not_found"


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


def test_a_benchmark_answer_runs_alone_on_the_cores_it_shares():
    """Measured alone: a one-thread answer that would share two cores takes both while it runs."""
    claims = {"tiny": Claim(cost=1, model_key="tiny"), "other": Claim(cost=1, model_key="other")}
    engine = GatedEngine(claims=claims)
    scheduler = scheduler_with(engine, cores=2)
    alone = GenerationRequest(
        key=1, user_id=1, model_id="tiny", messages=[ChatMessage("user", "1")], alone=True
    )
    benchmark = scheduler.submit(alone)
    chat = ask(scheduler, 2, 2, "other")
    assert wait_until(lambda: engine.running == 1)
    assert not wait_until(lambda: engine.running == 2, timeout=0.3)  # the chat answer waits its turn
    engine.gate.release(2)
    assert isinstance(drain(benchmark)[-1], Finished) and isinstance(drain(chat)[0], Queued)


def test_the_scheduler_says_whether_answers_can_run_together():
    claims = {"tiny": Claim(cost=1, model_key="tiny"), "other": Claim(cost=1, model_key="other")}
    scheduler = scheduler_with(GatedEngine(claims=claims), cores=2)
    options = GenerationOptions()
    assert scheduler.together([("tiny", options), ("other", options)])
    assert not scheduler.together([("tiny", options), ("tiny", options)])  # one model, one answer at a time
    assert not scheduler_with(GatedEngine(claims=claims), cores=1).together(
        [("tiny", options), ("other", options)]
    )
