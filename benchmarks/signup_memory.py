"""The server's memory while 40 people sign up at the same instant, with password hashes bounded
to one per core (the app's default) and unbounded (one per request, as before issue 16 item 17),
side by side; and how long another person's page takes meanwhile.

    .venv/bin/python -m benchmarks.signup_memory [--people 40]

Each side is a fresh real server (waitress on 127.0.0.1, SQLite, no engine work): its resident
memory (RSS) is sampled every 10 ms from before the sign-ups until they have all answered.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

import psutil
import requests

from benchmarks.client import CSRF_INPUT
from benchmarks.server import LiveServer

PASSWORD = "a long enough password"


def _sign_up_form(base_url: str, username: str):
    session = requests.Session()
    page = session.get(f"{base_url}/register", timeout=60)
    token = CSRF_INPUT.search(page.text)
    data = {"csrf_token": token.group(1) or token.group(2), "username": username}
    data.update(password=PASSWORD, confirm=PASSWORD)
    return lambda: session.post(f"{base_url}/register", data=data, timeout=600, allow_redirects=False)


def measure(people: int, hashes_at_once: int) -> dict:
    env = {"PASSWORD_HASHES_AT_ONCE": str(hashes_at_once), "REGISTRATIONS_PER_HOUR": "10000"}
    with tempfile.TemporaryDirectory() as folder, LiveServer(Path(folder) / "instance", env) as server:
        process = psutil.Process(server.process.pid)
        forms = [_sign_up_form(server.base_url, f"person{n:03d}") for n in range(people)]
        requests.get(f"{server.base_url}/login", timeout=60)  # warm: templates compiled
        before = process.memory_info().rss
        peak, done, statuses = before, threading.Event(), []
        start = threading.Barrier(people + 1)

        def sign_up(form) -> None:
            start.wait()
            statuses.append(form().status_code)

        threads = [threading.Thread(target=sign_up, args=(form,)) for form in forms]
        for thread in threads:
            thread.start()
        start.wait()
        began = time.monotonic()
        page_times = []

        def another_person() -> None:
            while not done.is_set():
                t0 = time.monotonic()
                requests.get(f"{server.base_url}/login", timeout=600)
                page_times.append(time.monotonic() - t0)
                time.sleep(0.1)

        watcher = threading.Thread(target=another_person)
        watcher.start()
        while any(t.is_alive() for t in threads):
            peak = max(peak, process.memory_info().rss)
            time.sleep(0.01)
        took = time.monotonic() - began
        done.set()
        watcher.join()
    return {
        "before_mb": before / 2**20,
        "peak_mb": peak / 2**20,
        "seconds": took,
        "made": statuses.count(302),
        "refused": {s: statuses.count(s) for s in sorted(set(statuses)) if s != 302},
        "page_median_s": statistics.median(page_times) if page_times else 0.0,
        "page_max_s": max(page_times, default=0.0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=40)
    people = parser.parse_args().people
    cores = len(psutil.Process().cpu_affinity() or []) or psutil.cpu_count()
    sides = [("unbounded (one hash per request)", people), (f"one hash per core ({cores}, the default)", 0)]
    print(f"{people} sign-ups at the same instant, {cores} cores")
    for label, hashes in sides:
        r = measure(people, hashes)
        print(
            f"  {label}: RSS {r['before_mb']:.0f} MB before, {r['peak_mb']:.0f} MB at the peak "
            f"(+{r['peak_mb'] - r['before_mb']:.0f} MB); all answered in {r['seconds']:.1f} s, "
            f"{r['made']} made, refused {r['refused'] or 'none'}; another person's sign-in page: "
            f"median {r['page_median_s']:.2f} s, slowest {r['page_max_s']:.2f} s"
        )


if __name__ == "__main__":
    main()
