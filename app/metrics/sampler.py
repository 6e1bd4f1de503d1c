"""CPU and memory of the process(es) doing an answer's inference, sampled while it runs.

A background thread reads psutil a few times a second. The processes come from the engine:
this app's own process for the embedded engine, the Ollama server and its runners for an
Ollama host on this machine, none for a remote host — whose figures stay unknown (None),
never 0, as do the machine's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import psutil

INTERVAL = 0.25  # seconds between samples


@dataclass
class Usage:
    process_cpu_seconds: float | None = None
    process_cpu_percent_mean: float | None = None  # % of the machine's cores
    process_cpu_percent_peak: float | None = None
    process_rss_peak_bytes: int | None = None
    machine_cpu_percent_mean: float | None = None
    machine_cpu_percent_peak: float | None = None
    machine_memory_used_peak_bytes: int | None = None
    samples: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def _cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.Error:  # it ended meanwhile
            continue
        total += times.user + times.system
    return total


def _rss(processes: list[psutil.Process]) -> int:
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.Error:
            continue
    return total


class Sampler:
    """`with Sampler(find_processes) as sampler: …`, then `sampler.usage`.

    `find_processes` returns the processes doing the work, or None when they are not on this
    machine; it is asked again at each sample (an Ollama runner may start mid-answer).
    """

    def __init__(self, find_processes: Callable[[], list[psutil.Process] | None], interval: float = INTERVAL):
        self.find_processes = find_processes
        self.interval = interval
        self.usage = Usage()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cores = psutil.cpu_count() or 1

    def __enter__(self) -> Sampler:
        processes = self.find_processes()
        if processes is None:  # a remote host: nothing here to measure
            return self
        self._start_cpu = _cpu_seconds(processes)
        self._started = time.monotonic()
        psutil.cpu_percent(None)  # starts the machine's own interval
        self._process_percents: list[float] = []
        self._machine_percents: list[float] = []
        self._rss_peak = _rss(processes)
        self._memory_peak = psutil.virtual_memory().used
        self._thread = threading.Thread(target=self._run, args=(processes,), daemon=True, name="sampler")
        self._thread.start()
        return self

    def _run(self, processes: list[psutil.Process]) -> None:
        last_cpu, last_at = self._start_cpu, self._started
        while not self._stop.wait(self.interval):
            processes = self.find_processes() or processes
            cpu, now = _cpu_seconds(processes), time.monotonic()
            if now > last_at:
                self._process_percents.append(100 * max(0.0, cpu - last_cpu) / (now - last_at) / self._cores)
            last_cpu, last_at = cpu, now
            self._machine_percents.append(psutil.cpu_percent(None))
            self._rss_peak = max(self._rss_peak, _rss(processes))
            self._memory_peak = max(self._memory_peak, psutil.virtual_memory().used)
        self._end_cpu = _cpu_seconds(processes)
        self._rss_peak = max(self._rss_peak, _rss(processes))

    def __exit__(self, *exc) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        elapsed = time.monotonic() - self._started
        cpu = max(0.0, self._end_cpu - self._start_cpu)
        process = self._process_percents or [100 * cpu / elapsed / self._cores if elapsed else 0.0]
        machine = self._machine_percents or [psutil.cpu_percent(None)]
        self.usage = Usage(
            process_cpu_seconds=cpu,
            process_cpu_percent_mean=sum(process) / len(process),
            process_cpu_percent_peak=max(process),
            process_rss_peak_bytes=self._rss_peak,
            machine_cpu_percent_mean=sum(machine) / len(machine),
            machine_cpu_percent_peak=max(machine),
            machine_memory_used_peak_bytes=self._memory_peak,
            samples=len(self._process_percents),
        )
