"""What reading an attached file costs: pages per second of extract_isolated (the child process
that parses untrusted files, at nice 19) for a 50-page PDF and a 20-page DOCX, against the same
extraction in process, and the child's peak memory.

    .venv/bin/python -m benchmarks.documents_indexing [--runs 3]
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import statistics
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import psutil

from app.documents.extract import extract, extract_isolated
from tests.documents import PAGE_BREAK, numbered_pages, write_docx, write_pdf

WORDS_PER_PAGE = 450  # a page of a typical report in 11 pt


def samples(folder: Path) -> list[tuple[Path, int]]:
    """A one-line note (the fixed cost of a child: Python, imports), then the two reports."""
    note = folder / "note.txt"
    note.write_text("Une note d'une ligne.")
    pdf = write_pdf(folder / "reglement-50-pages.pdf", numbered_pages(50, words=WORDS_PER_PAGE))
    blocks: list[str] = []
    for number, page in enumerate(numbered_pages(20, words=WORDS_PER_PAGE), start=1):
        blocks += [f"# Chapitre {number}", *page.split("\n"), PAGE_BREAK]
    docx = write_docx(folder / "procedures-20-pages.docx", blocks[:-1])
    return [(note, 1), (pdf, 50), (docx, 20)]


def measure(path: Path, runs: int) -> dict:
    """In a process of its own, so that its children's CPU time is this file's alone."""
    isolated, in_process, peak = [], [], 0
    for _ in range(runs):
        started = time.perf_counter()
        document, run_peak = sampled(lambda: extract_isolated(path, path.name, max_pages=500))
        isolated.append(time.perf_counter() - started)
        peak = max(peak, run_peak)
        started = time.perf_counter()
        extract(path, path.name, max_pages=500)
        in_process.append(time.perf_counter() - started)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "pages": document.pages,
        "chars": sum(len(s.text) for s in document.sections),
        "isolated": statistics.median(isolated),
        "in_process": statistics.median(in_process),
        # CPU seconds, unlike the wall clock, do not depend on what else the cores are doing
        # (at nice 19 the child waits for every busier process).
        "child_cpu": (children.ru_utime + children.ru_stime) / runs,
        "child_peak_mb": peak / 1024**2,
    }


def sampled(work):
    """`work()`'s result and its child's largest resident memory, sampled every 10 ms: the
    kernel's own peak (ru_maxrss) counts the parent's memory the child was forked with."""
    done: list = []
    thread = threading.Thread(target=lambda: done.append(work()))
    thread.start()
    peak = 0
    while thread.is_alive():
        for child in psutil.Process().children():
            try:
                peak = max(peak, child.memory_info().rss)
            except psutil.NoSuchProcess:
                pass
        time.sleep(0.01)
    thread.join()
    return done[0], peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    columns = ("pages", "chars", "isolated", "pages/s", "child CPU", "pages/CPU s", "in process")
    columns += ("child peak",)
    print(f"{'file':<26}", *(f"{c:>11}" for c in columns))
    with tempfile.TemporaryDirectory() as folder:
        for path, pages in samples(Path(folder)):
            fork = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(max_workers=1, mp_context=fork) as pool:
                found = pool.submit(measure, path, args.runs).result()
            assert found["pages"] == pages, found
            figures = (
                found["pages"],
                found["chars"],
                f"{found['isolated']:.2f} s",
                f"{pages / found['isolated']:.1f}",
                f"{found['child_cpu']:.2f} s",
                f"{pages / found['child_cpu']:.1f}",
                f"{found['in_process']:.2f} s",
                f"{found['child_peak_mb']:.0f} MB",
            )
            print(f"{path.name:<26}", *(f"{f:>11}" for f in figures))


if __name__ == "__main__":
    main()
