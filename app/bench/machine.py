"""What a benchmark ran on: the figures that make two servers' results comparable."""

from __future__ import annotations

import platform
import socket
from pathlib import Path

import psutil

from app.llm.types import EngineStatus


def _cpuinfo() -> list[dict[str, str]]:
    """/proc/cpuinfo as one dict per logical CPU (Linux); empty elsewhere."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    processors = []
    for block in text.strip().split("\n\n"):
        fields = {}
        for line in block.splitlines():
            name, _, value = line.partition(":")
            fields[name.strip()] = value.strip()
        processors.append(fields)
    return processors


def _operating_system() -> str:
    try:
        name = platform.freedesktop_os_release().get("PRETTY_NAME", "")
    except OSError:
        name = ""
    return f"{name or platform.system()} (kernel {platform.release()})"


def describe(engines: list[EngineStatus]) -> dict:
    """This machine: CPU model, sockets, physical and logical cores, memory, OS, engines."""
    processors = _cpuinfo()
    cpu_model = next((p["model name"] for p in processors if p.get("model name")), "") or platform.processor()
    # A socket per distinct "physical id"; a virtual machine may not say, and counts as one.
    sockets = len({p["physical id"] for p in processors if "physical id" in p}) or 1
    return {
        "hostname": socket.gethostname(),
        "cpu_model": cpu_model or platform.machine(),
        "architecture": platform.machine(),
        "sockets": sockets,
        "physical_cores": psutil.cpu_count(logical=False) or 0,
        "logical_cores": psutil.cpu_count(logical=True) or 0,
        "memory_bytes": psutil.virtual_memory().total,
        "os": _operating_system(),
        "python": platform.python_version(),
        "engines": [{"engine": s.engine, "version": s.version, "reachable": s.reachable} for s in engines],
    }


def label(machine: dict) -> str:
    """How charts and lists name a machine: its host name and logical CPUs."""
    return f"{machine.get('hostname') or '?'} · {machine.get('logical_cores') or '?'} CPU"


def same_machine(a: dict, b: dict) -> bool:
    """Whether two descriptions are of one machine (a run's figures apply to it)."""
    keys = ("hostname", "cpu_model", "logical_cores", "memory_bytes")
    return all(a.get(k) == b.get(k) for k in keys)
