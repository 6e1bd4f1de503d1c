"""The scheduler: seats in batches, one engine process on this machine's cores at a time, fair
between people, bounded per person and in all."""

import threading
import time
from collections import Counter

from app.llm.catalogue import Catalogue
from app.llm.scheduler import TYPICAL_ANSWER_SECONDS, Finished, GenerationRequest, Queued, Refusal, Scheduler
from app.llm.types import (
    ANSWER_MAX_CHARS,
    ANSWER_TOO_LONG,
    ChatMessage,
    Claim,
    GenerationOptions,
    Outcome,
    Text,
)
from tests.fakes import ScriptedEngine
from tests.patience import patience


def scheduler_with(*engines, **kwargs) -> Scheduler:
    return Scheduler(Catalogue(list(engines), "tiny"), **kwargs)


def request(key, user: int = 1, model: str = "tiny", **kwargs) -> GenerationRequest:
    return GenerationRequest(
        key=str(key), user_id=user, model_id=model, messages=[ChatMessage("user", str(user))], **kwargs
    )


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
        self.most_running = 0
        self.models_running: Counter[str] = Counter()
        self.models_together = 0  # most models decoding at the same instant
        self._count = threading.Lock()

    def claim(self, model_id, options):
        return self.claims.get(model_id, Claim(f"{self.name}/{model_id}"))

    def stream_chat(self, model_id, messages, options, cancel):
        with self._count:
            self.started_order.append(int(messages[0].content))
            self.running += 1
            self.most_running = max(self.most_running, self.running)
            self.models_running[model_id] += 1
            self.models_together = max(self.models_together, len(+self.models_running))
        self.gate.acquire(timeout=5)
        with self._count:
            self.running -= 1
            self.models_running[model_id] -= 1
        yield from super().stream_chat(model_id, messages, options, cancel)


def ask(scheduler, key, user, model="tiny", **kwargs):
    return scheduler.submit(request(key, user, model, **kwargs))


def wait_until(condition, timeout: float | None = None) -> bool:
    """Whether `condition` holds within `timeout` seconds. Waiting for something that must happen,
    the default: a busy machine's threads take their time (tests/patience.py). A short explicit
    `timeout` checks that something does not happen."""
    deadline = time.monotonic() + (patience(5.0) if timeout is None else timeout)
    event = threading.Event()
    while True:
        if condition():
            return True
        if time.monotonic() > deadline:
            return False
        event.wait(0.01)


def let_go(engine, jobs):
    for _ in jobs:
        engine.gate.release()
    return [drain(job) for job in jobs]


def test_a_second_request_waits_its_turn_and_is_told_its_position():
    engine = GatedEngine()
    scheduler = scheduler_with(engine)
    first = ask(scheduler, 1, 1)
    assert wait_until(lambda: engine.running == 1)
    second = ask(scheduler, 2, 2)
    events = (e for e in second.events(tick=0.05) if e is not None)
    second_events = [next(events)]  # told its place: from here its wait is counted
    told = time.monotonic()
    assert not wait_until(lambda: engine.running == 2, timeout=0.2)  # the first holds the only seat
    held = time.monotonic() - told
    first_events = let_go(engine, [first])[0]
    engine.gate.release()
    second_events += list(events)
    assert second_events[0] == Queued(1)
    assert isinstance(first_events[-1], Finished) and isinstance(second_events[-1], Finished)
    # Its wait counts the time the first answer held the seat (measured here, however slow the
    # machine: a fixed number of seconds held only while this test's threads ran promptly).
    assert second_events[-1].stats.queue_seconds >= held, (second_events[-1].stats, held)
    assert first.ended.wait(patience(1)) and second.ended.wait(patience(1))


def test_one_models_answers_are_written_together_up_to_its_seats():
    engine = GatedEngine(claims={"tiny": Claim("server/tiny", seats=4)})
    scheduler = scheduler_with(engine)
    jobs = [ask(scheduler, key, user=key) for key in range(1, 6)]
    assert wait_until(lambda: engine.running == 4)
    assert not wait_until(lambda: engine.running == 5, timeout=0.3)  # the fifth waits for a seat
    events = let_go(engine, jobs)
    assert isinstance(events[4][0], Queued)
    assert {e[-1].stats.concurrent for e in events[:4]} == {4}  # written together, and recorded so


def test_two_models_never_decode_on_this_machines_cores_at_once():
    claims = {"tiny": Claim("server/tiny", seats=4), "other": Claim("server/other", seats=4)}
    engine = GatedEngine(claims=claims)
    scheduler = scheduler_with(engine)
    first, second = ask(scheduler, 1, 1, "tiny"), ask(scheduler, 2, 2, "other")
    assert wait_until(lambda: engine.running == 1)
    assert not wait_until(lambda: engine.running == 2, timeout=0.3)
    let_go(engine, [first, second])
    assert engine.models_together == 1


def test_a_fairer_answer_for_another_model_stops_the_running_model_taking_more():
    # "tiny" writes one answer; user 2's "other" waits for the cores. A later "tiny" answer of
    # user 1 (less fair: user 1 already has one running) must not overtake it, or "other"
    # would wait as long as "tiny" is asked.
    claims = {"tiny": Claim("server/tiny", seats=4), "other": Claim("server/other", seats=4)}
    engine = GatedEngine(claims=claims)
    scheduler = scheduler_with(engine)
    jobs = [ask(scheduler, 1, 1, "tiny")]
    assert wait_until(lambda: engine.running == 1)
    jobs.append(ask(scheduler, 2, 2, "other"))
    assert wait_until(lambda: len(scheduler._waiting) == 1)
    jobs.append(ask(scheduler, 3, 1, "tiny"))
    assert not wait_until(lambda: engine.running == 2, timeout=0.3)  # no seat taken past "other"
    let_go(engine, jobs)
    assert engine.started_order == [1, 2, 1]


def test_a_model_that_takes_the_free_cores_takes_all_its_waiting_answers_in_one_batch():
    # Four people at once, two per model, the fairest order alternating the models: the first
    # model's batch holds both of its answers (the other model's wait for the cores either way).
    claims = {"tiny": Claim("server/tiny", seats=4), "other": Claim("server/other", seats=4)}
    engine = GatedEngine(claims=claims)
    scheduler = scheduler_with(engine)
    blocker = ask(scheduler, 9, 9, "other")  # holds the cores while the four arrive
    assert wait_until(lambda: engine.running == 1)
    jobs = [
        ask(scheduler, k, k, model) for k, model in ((1, "tiny"), (2, "other"), (3, "tiny"), (4, "other"))
    ]
    engine.gate.release()  # the blocker ends: "tiny" is the fairest waiting
    assert wait_until(lambda: engine.running == 2)
    assert sorted(engine.started_order[1:]) == [1, 3], "both of tiny's answers in its first batch"
    let_go(engine, [blocker, *jobs])
    assert engine.models_together == 1


def test_one_users_many_requests_do_not_starve_another_users_one():
    engine = GatedEngine()
    scheduler = scheduler_with(engine)
    jobs = [ask(scheduler, key, user=1) for key in range(1, 5)]  # user 1 asks four times
    assert wait_until(lambda: engine.running == 1)
    jobs.append(ask(scheduler, 9, user=2))  # then user 2 once
    assert wait_until(lambda: len(scheduler._waiting) == 4)
    let_go(engine, jobs)
    assert engine.started_order == [1, 2, 1, 1, 1]


def test_queue_positions_count_down_as_answers_finish():
    engine = GatedEngine()
    scheduler = scheduler_with(engine)
    jobs = [ask(scheduler, 1, user=1)]
    assert wait_until(lambda: engine.running == 1)
    jobs += [ask(scheduler, key, user=key) for key in (2, 3)]
    for started in (1, 2, 3):  # one seat, so each position can be seen
        assert wait_until(lambda n=started: len(engine.started_order) == n and engine.running == 1)
        engine.gate.release()
    positions = [[e.position for e in drain(job) if isinstance(e, Queued)] for job in jobs]
    assert positions == [[], [1], [2, 1]]


def test_a_remote_host_takes_its_own_seats_beside_the_local_cores():
    claims = {"tiny": Claim("server/tiny"), "other": Claim("ollama@far:11434", seats=2, local=False)}
    engine = GatedEngine(claims=claims)
    scheduler = scheduler_with(engine)
    jobs = [ask(scheduler, 1, 1, "tiny")] + [ask(scheduler, k, k, "other") for k in (2, 3, 4)]
    assert wait_until(lambda: engine.running == 3)  # 1 local + 2 remote; the 3rd remote waits
    assert not wait_until(lambda: engine.running == 4, timeout=0.3)
    for events in let_go(engine, jobs):
        assert isinstance(events[-1], Finished)


def test_one_person_cannot_hold_more_than_their_share_of_places():
    scheduler = scheduler_with(ScriptedEngine(), max_per_user=3)
    assert [scheduler.reserve(1) for _ in range(3)] == [None, None, None]
    assert scheduler.reserve(1) == Refusal.USER
    assert scheduler.reserve(2) is None  # a colleague still gets one
    scheduler.release(1)
    assert scheduler.reserve(1) is None


def test_a_persons_running_answers_count_against_their_share_until_they_end():
    engine = GatedEngine()
    scheduler = scheduler_with(engine, max_per_user=2)
    jobs = [ask(scheduler, k, 1) for k in (1, 2)]
    assert scheduler.reserve(1) == Refusal.USER
    let_go(engine, jobs)
    assert wait_until(lambda: scheduler.reserve(1) is None)


def test_the_queue_is_bounded_and_a_released_place_can_be_taken_again():
    scheduler = scheduler_with(ScriptedEngine(), max_answers=2)
    assert scheduler.reserve(1) is None and scheduler.reserve(2) is None
    assert scheduler.reserve(3) == Refusal.FULL
    scheduler.release(1)
    assert scheduler.reserve(3) is None


def test_a_closed_scheduler_takes_no_new_answer():
    scheduler = scheduler_with(ScriptedEngine())
    scheduler.close()
    assert scheduler.reserve(1) == Refusal.CLOSED
    assert drain(scheduler.submit(request(1)))[-1].outcome == Outcome.INTERRUPTED


def test_cancelling_a_queued_request_ends_it_without_running_it():
    engine = ScriptedEngine(words=["a"] * 50, delay=0.02)
    scheduler = scheduler_with(engine)
    first = scheduler.submit(request(1))
    assert engine.started.wait(patience(5))
    second = scheduler.submit(request(2))
    assert scheduler.cancel("2", Outcome.DISCONNECTED)
    events = drain(second)
    assert events[-1].outcome == Outcome.DISCONNECTED
    assert not any(isinstance(e, Text) for e in events)
    assert len(engine.requests) == 1
    scheduler.cancel("1", Outcome.STOPPED)
    assert drain(first)[-1].outcome == Outcome.STOPPED


def test_stop_reaches_a_request_waiting_for_a_seat():
    engine = GatedEngine()
    scheduler = scheduler_with(engine)
    first, second = ask(scheduler, 1, 1), ask(scheduler, 2, 2)
    assert wait_until(lambda: engine.running == 1)
    assert scheduler.cancel("2", Outcome.STOPPED)
    assert drain(second)[-1].outcome == Outcome.STOPPED and engine.started_order == [1]
    engine.gate.release()
    drain(first)


def test_cancel_all_ends_waiting_and_running_answers():
    engine = ScriptedEngine(words=["a"] * 200, delay=0.01)
    scheduler = scheduler_with(engine)
    jobs = [scheduler.submit(request(k)) for k in (1, 2)]
    assert engine.started.wait(patience(5))
    assert scheduler.cancel_all(Outcome.INTERRUPTED) == 2
    assert [drain(job)[-1].outcome for job in jobs] == [Outcome.INTERRUPTED] * 2


def test_cancel_of_an_unknown_answer_says_so():
    assert scheduler_with(ScriptedEngine()).cancel("nothing", Outcome.STOPPED) is False


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


def test_a_benchmark_answer_runs_alone_on_the_cores_and_in_its_pool():
    claims = {"tiny": Claim("server/tiny", seats=4), "other": Claim("server/other", seats=4)}
    engine = GatedEngine(claims=claims)
    scheduler = scheduler_with(engine)
    benchmark = ask(scheduler, 1, 1, "tiny", alone=True)
    chats = [ask(scheduler, 2, 2, "tiny"), ask(scheduler, 3, 3, "other")]
    assert wait_until(lambda: engine.running == 1)
    assert not wait_until(lambda: engine.running == 2, timeout=0.3)  # neither chat answer joins it
    events = let_go(engine, [benchmark, *chats])
    assert isinstance(events[0][-1], Finished) and events[0][-1].stats.concurrent == 1


def test_the_scheduler_says_whether_answers_can_run_together():
    claims = {
        "tiny": Claim("server/tiny", seats=4),
        "other": Claim("server/other", seats=4),
        "far": Claim("ollama@far", seats=1, local=False),
        "single": Claim("inprocess/single", seats=1),
    }
    scheduler = scheduler_with(GatedEngine(claims=claims, model_ids=("tiny", "other", "far", "single")))
    options = GenerationOptions()
    assert scheduler.together([("tiny", options), ("tiny", options)])  # two seats of one batch
    assert not scheduler.together([("tiny", options), ("other", options)])  # two models, one machine
    assert scheduler.together([("tiny", options), ("far", options)])  # a remote host beside
    assert not scheduler.together([("single", options), ("single", options)])  # one seat


class Host(GatedEngine):
    """An Ollama-like host: same model names as its peers, seats of its own."""

    interchangeable = True

    def __init__(self, name):
        super().__init__(model_ids=("phi3",))
        self.name = name

    def claim(self, model_id, options):
        return Claim(self.name, seats=2, local=False)


def two_hosts_after_a_first_answer():
    """Hosts a and b (two seats each); conversation 7's first answer was written by a."""
    first, second = Host("ollama@a"), Host("ollama@b")
    scheduler = scheduler_with(first, second)
    opening = scheduler.submit(request(1, model="phi3", affinity="conversation:7"))
    first.gate.release()
    drain(opening)
    assert opening.engine is first
    return scheduler, first, second


def test_a_conversation_goes_back_to_the_host_that_wrote_its_last_answer():
    scheduler, first, second = two_hosts_after_a_first_answer()
    colleague = scheduler.submit(request(2, user=2, model="phi3"))  # a is now the busier host...
    assert colleague.engine is first
    follow_up = scheduler.submit(request(3, model="phi3", affinity="conversation:7"))
    stranger = scheduler.submit(request(4, user=4, model="phi3"))
    assert follow_up.engine is first  # ...by less than a batch: back to its prompt cache
    assert stranger.engine is second  # an answer with no history goes to the less busy one
    let_go(first, [colleague, follow_up])
    let_go(second, [stranger])


def test_a_conversation_moves_when_its_host_is_a_whole_batch_busier():
    scheduler, first, second = two_hosts_after_a_first_answer()
    turns = [scheduler.submit(request(k, model="phi3", affinity="conversation:7")) for k in (2, 3, 4)]
    # a holds two (its whole batch of seats) while b holds none: the third goes to b.
    assert [job.engine.name for job in turns] == ["ollama@a", "ollama@a", "ollama@b"]
    let_go(first, turns[:2])
    let_go(second, turns[2:])


def test_an_answer_cancelled_the_instant_it_was_admitted_gives_its_seat_back():
    engine = GatedEngine()
    scheduler = scheduler_with(engine)
    with scheduler._cond:  # admitted and cancelled before its worker even looks
        first = scheduler.submit(request(1))
        first.cancel(Outcome.STOPPED)
    assert drain(first)[-1].outcome == Outcome.STOPPED
    second = ask(scheduler, 2, 2)
    assert wait_until(lambda: engine.running == 1), "the seat was given back"
    let_go(engine, [second])


def test_a_model_no_engine_has_fails_without_holding_the_cores():
    engine = GatedEngine()
    scheduler = scheduler_with(engine)
    missing = scheduler.submit(request(1, model="gone"))
    assert drain(missing)[-1].error.code == "model_not_found"
    other = ask(scheduler, 2, 2)
    assert wait_until(lambda: engine.running == 1)
    assert scheduler.occupancy()  # the admin's page can still count them
    let_go(engine, [other])


def test_an_answer_past_the_size_bound_ends_as_an_error_keeping_what_came_before():
    engine = ScriptedEngine(words=["x" * 100_000] * 100)  # a 10 MB answer
    job = scheduler_with(engine).submit(request(1))
    events = drain(job)
    kept = "".join(e.text for e in events if isinstance(e, Text))
    assert events[-1].error.code == ANSWER_TOO_LONG
    assert len(kept) == ANSWER_MAX_CHARS  # the chunks that fitted, nothing past the bound


def test_a_refused_persons_retry_after_counts_the_answers_queued_before_theirs():
    engine = GatedEngine()
    scheduler = scheduler_with(engine, max_per_user=1)
    jobs = [ask(scheduler, 1, user=2)]  # a colleague's answer holds the only seat
    assert wait_until(lambda: engine.running == 1)
    jobs.append(ask(scheduler, 2, user=1))  # theirs waits behind it
    assert scheduler.reserve(1) == Refusal.USER
    # Nothing measured yet: an answer is taken to last 30 s; theirs starts after the colleague's.
    assert scheduler.seconds_until_a_place(user_id=1) == 2 * TYPICAL_ANSWER_SECONDS
    assert scheduler.seconds_until_a_place(user_id=2) <= TYPICAL_ANSWER_SECONDS
    let_go(engine, jobs)


def test_retry_after_follows_how_long_the_last_answers_took():
    engine = GatedEngine()
    scheduler = scheduler_with(engine, max_answers=1)
    let_go(engine, [ask(scheduler, k, user=1) for k in range(3)])  # quick answers, measured
    job = ask(scheduler, 9, user=2)
    assert wait_until(lambda: engine.running == 1)
    assert scheduler.reserve(3) == Refusal.FULL
    assert scheduler.seconds_until_a_place() == 1, "answers take a moment here, not 30 s"
    let_go(engine, [job])
