"""One process at a time runs engines for an instance folder: `flask serve`, or `flask bench
run` while no server runs. A second would start its own llama-server for the same model (the
model's memory held twice, two decodes on the same cores), and on start it would take the
first one's servers for leftovers and kill them."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class InstanceBusy(Exception):
    """Another process holds the instance: `holder` says which (its pid and command)."""

    def __init__(self, holder: str) -> None:
        super().__init__(holder)
        self.holder = holder


def hold(instance_dir: Path, what: str):
    """Take the instance's lock for this process's life (the file stays open); InstanceBusy
    when another process has it. The kernel lets it go when the process ends, however."""
    instance_dir.mkdir(parents=True, exist_ok=True)
    path = instance_dir / "engines.lock"
    handle = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise InstanceBusy(holder) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{what} (pid {os.getpid()})")
    handle.flush()
    return handle
