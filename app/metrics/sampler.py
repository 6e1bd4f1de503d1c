"""Each answer's share of the CPU and memory of the engine process that writes it.

Several answers share one engine process when it writes them in one batch (a llama-server's
slots, an Ollama runner's parallel requests), so an answer's CPU is not the process's CPU
while it ran but its part of it: every quarter of a second, the CPU the process spent is split
among the answers it was writing, by the tokens each had processed in that time (prompt tokens
read, as the engine reports them, and tokens generated); when none reported any, equally. The
shares of the answers written together therefore add up to the process's CPU time while any
of them ran. Its memory is the process's: the answers share it, it is not divided.

The processes come from the engine: a llama-server, this app's own process for the in-process
engine, the Ollama server and its runners for an Ollama host on this machine, none for a
remote host — whose figures stay unknown (None), never 0, as do the machine's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import psutil

INTERVAL = 0.25  # seconds between samples


@dataclass
class Usage:
    process_cpu_seconds: float | None = None  # the answer's share
    process_cpu_percent_mean: float | None = None  # that share over the answer's time, % of the machine
    process_cpu_percent_peak: float | None = None
    process_rss_peak_bytes: int | None = None  # the engine process's, shared
    machine_cpu_percent_mean: float | None = None
    machine_cpu_percent_peak: float | None = None
    machine_memory_used_peak_bytes: int | None = None
    samples: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Share:
    started: float
    cpu: float = 0.0
    pending: int = 0  # tokens processed since the last sample
    rates: list[float] = field(default_factory=list)  # its share, % of the machine, per sample
    machine: list[float] = field(default_factory=list)
    rss_peak: int = 0
    memory_peak: int = 0
    measured: bool = False  # the processes were found (not a remote host)


def _cpu_by_process(processes: list[psutil.Process]) -> dict[int, float]:
    seconds = {}
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.Error:  # it ended meanwhile
            continue
        seconds[process.pid] = times.user + times.system
    return seconds


def _rss(processes: list[psutil.Process]) -> int:
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.Error:
            continue
    return total


def _machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far."""
    times = psutil.cpu_times()
    total = sum(times)
    return total - times.idle - getattr(times, "iowait", 0.0), total


class _PoolMeter:
    """The answers of one engine process (a pool), and the thread that samples it."""

    def __init__(self, processes: Callable[[], list | None], interval: float, on_empty: Callable[[], None]):
        self.processes = processes
        self.interval = interval
        self.shares: dict[str, _Share] = {}
        self.lock = threading.Lock()
        self._on_empty = on_empty
        self._last_cpu: dict[int, float] = {}
        self._since = time.time()  # when its first answer began (a process started after: counted whole)
        self._last_at = time.monotonic()
        self._last_machine = _machine_busy()
        self._cores = psutil.cpu_count() or 1
        self._stop = threading.Event()
        self._start_thread()

    def _start_thread(self) -> None:
        self._stop = threading.Event()
        threading.Thread(target=self._run, args=(self._stop,), daemon=True, name="cpu-shares").start()

    def _run(self, stop: threading.Event) -> None:
        while not stop.wait(self.interval):
            with self.lock:
                self._sample()

    def _sample(self) -> None:
        """Split the CPU spent since the last sample among the answers (the caller holds the lock)."""
        processes = self.processes()
        now = time.monotonic()
        elapsed = max(now - self._last_at, 1e-6)
        busy, total = _machine_busy()
        machine = 100 * (busy - self._last_machine[0]) / max(total - self._last_machine[1], 1e-6)
        machine = min(100.0, machine)  # a machine busy throughout came out at 100.00000000727596 %
        self._last_machine, self._last_at = (busy, total), now
        if processes is None:  # elsewhere: nothing here to measure
            return
        cpu = _cpu_by_process(processes)
        spent = sum(max(0.0, seconds - self._baseline(pid, seconds)) for pid, seconds in cpu.items())
        self._last_cpu = cpu
        rss, memory = _rss(processes), psutil.virtual_memory().used
        work = sum(share.pending for share in self.shares.values())
        for share in self.shares.values():
            part = spent * (share.pending / work if work else 1 / len(self.shares))
            share.cpu += part
            share.pending = 0
            share.rates.append(100 * part / elapsed / self._cores)
            share.machine.append(machine)
            share.rss_peak = max(share.rss_peak, rss)
            share.memory_peak = max(share.memory_peak, memory)
            share.measured = True

    def _baseline(self, pid: int, seconds: float) -> float:
        """What a process had spent at the last sample. One seen for the first time counts from
        its start when it started for these answers (a server loading its model for them), else
        from now on."""
        if pid in self._last_cpu:
            return self._last_cpu[pid]
        try:
            started = psutil.Process(pid).create_time()
        except psutil.Error:
            return seconds
        return 0.0 if started >= self._since else seconds

    def begin(self, key: str) -> None:
        with self.lock:
            if self.shares:
                self._sample()  # what was spent so far belongs to the others
            else:  # the first answer: start counting now
                if self._stop.is_set():  # its last answer had just ended: sample again
                    self._start_thread()
                processes = self.processes() or []
                self._last_cpu = _cpu_by_process(processes)
                self._since = time.time()
                self._last_at = time.monotonic()
                self._last_machine = _machine_busy()
            self.shares[key] = _Share(started=time.monotonic())

    def work(self, key: str, tokens: int) -> None:
        with self.lock:
            share = self.shares.get(key)
            if share is not None:
                share.pending += tokens

    def end(self, key: str) -> Usage:
        with self.lock:
            self._sample()
            share = self.shares.pop(key, None)
            empty = not self.shares
            if empty:
                self._stop.set()
        if empty:
            self._on_empty()
        if share is None or not share.measured:
            return Usage(samples=len(share.rates) if share else 0)
        elapsed = max(time.monotonic() - share.started, 1e-6)
        return Usage(
            process_cpu_seconds=share.cpu,
            process_cpu_percent_mean=100 * share.cpu / elapsed / self._cores,
            process_cpu_percent_peak=max(share.rates),
            process_rss_peak_bytes=share.rss_peak,
            machine_cpu_percent_mean=sum(share.machine) / len(share.machine),
            machine_cpu_percent_peak=max(share.machine),
            machine_memory_used_peak_bytes=share.memory_peak,
            samples=len(share.rates),
        )


class CpuShares:
    """The scheduler's meter (app.llm.scheduler.Meter): `begin` an answer in its pool, report
    the tokens it processes with `work`, `end` it to get its Usage (as a dict)."""

    def __init__(self, interval: float = INTERVAL) -> None:
        self.interval = interval
        self._pools: dict[str, _PoolMeter] = {}
        self._where: dict[str, _PoolMeter] = {}
        self._lock = threading.Lock()

    def begin(self, key: str, pool: str, processes: Callable[[], list | None]) -> None:
        with self._lock:
            meter = self._pools.get(pool)
            if meter is None:
                meter = self._pools[pool] = _PoolMeter(
                    processes, self.interval, lambda: self._drop(pool, meter)
                )
            self._where[key] = meter
            meter.begin(key)

    def work(self, key: str, tokens: int) -> None:
        meter = self._where.get(key)
        if meter is not None:
            meter.work(key, tokens)

    def end(self, key: str) -> dict:
        with self._lock:
            meter = self._where.pop(key, None)
        return meter.end(key).as_dict() if meter is not None else Usage().as_dict()

    def _drop(self, pool: str, meter: _PoolMeter) -> None:
        with self._lock:
            if self._pools.get(pool) is meter and not meter.shares:
                del self._pools[pool]
