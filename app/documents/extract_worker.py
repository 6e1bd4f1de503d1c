"""The child of extract_isolated: `python -m app.documents.extract_worker PATH NAME MAX_PAGES MEMORY_BYTES`.

It lowers its own priority and caps its own memory before touching the file (done here rather than
in a preexec_fn, which is unsafe in the threaded web server), then prints the result as JSON on
stdout. Exit status 3: the file exhausted the memory cap.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import sys
from pathlib import Path

CPU_SECONDS = 600


def main(path: str, filename: str, max_pages: str, memory_bytes: str) -> int:
    os.nice(19)  # indexing must not slow the answers being written
    resource.setrlimit(resource.RLIMIT_AS, (int(memory_bytes), int(memory_bytes)))
    # CPU time too: a parser looping on a crafted file ends even if its parent died and no
    # timeout is left to kill it (a 500-page PDF takes ~7 CPU seconds).
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))
    # Libraries may print: only the result goes to the real stdout.
    result = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    # A broken PDF can make pypdf warn once per object: thousands of lines nobody reads.
    logging.disable(logging.WARNING)
    from app.documents.extract import DocumentError, extract, to_json

    try:
        answer = to_json(extract(Path(path), filename, int(max_pages)))
    except DocumentError as error:
        answer = json.dumps({"error": error.code, "values": error.values})
    except MemoryError:
        return 3
    result.write(answer)
    result.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
