"""`flask bench` as the admin types it: the quick suite on both bundled models, its table, what
is stored, an export imported on another server, and a model that is not there.

Real processes and real models: each command is `python -m flask …` with its own instance
folder and database, as on a server where the web app is stopped or idle. The page's side of
the same run (history and charts) is in tests/browser/test_bench_in_browser.py.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.server import ISOLATED_SETTINGS
from tests.patience import patience

pytestmark = pytest.mark.model

ROOT = Path(__file__).resolve().parent.parent
GEMMA_FILE = ROOT / "instance" / "models" / "gemma-3-270m-q4_k_m.gguf"
SMOLLM2, GEMMA = "SmolLM2-135M-Instruct.Q4_1", "gemma-3-270m-q4_k_m"
PROMPTS = ("capitale-italie", "multiplication")  # the "rapide" suite


class Server:
    """One server's folders as `flask` sees them: its instance, its models, its database."""

    def __init__(self, folder: Path, models: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.database = folder / "causerie.sqlite3"
        inherited = {k: v for k, v in os.environ.items() if k not in ISOLATED_SETTINGS}
        self.env = {
            **inherited,
            "FLASK_APP": "wsgi",
            "CAUSERIE_INSTANCE": str(folder),
            "MODELS_DIR": str(models),
            "DATABASE_URL": f"sqlite:///{self.database}",
            "OLLAMA_HOSTS": "",
            "PYTHONUNBUFFERED": "1",
        }
        self.flask("db", "upgrade")

    def flask(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [sys.executable, "-m", "flask", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=patience(900),  # real answers, on a machine maybe busy: what they leave is checked
        )
        if check:
            assert done.returncode == 0, f"flask {' '.join(args)}: {done.returncode}\n{done.stderr[-3000:]}"
        return done

    def query(self, sql: str, *params) -> list[sqlite3.Row]:
        with sqlite3.connect(self.database) as database:
            database.row_factory = sqlite3.Row
            return database.execute(sql, params).fetchall()


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder holding Gemma-3-270M (SmolLM2 comes with its package)."""
    if not GEMMA_FILE.exists():
        pytest.skip("Gemma-3-270M is assembled by setup")
    folder = tmp_path_factory.mktemp("bench-cli-models")
    (folder / GEMMA_FILE.name).symlink_to(GEMMA_FILE)
    return folder


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, models: Path) -> Server:
    return Server(tmp_path_factory.mktemp("bench-cli-instance"), models)


@pytest.fixture(scope="module")
def quick_run(server: Server) -> subprocess.CompletedProcess:
    """`flask bench run --suite rapide` on both bundled models, once for the module."""
    began = time.monotonic()
    done = server.flask("bench", "run", "--suite", "rapide", "--models", f"{SMOLLM2},{GEMMA}", check=False)
    print(f"\nflask bench run --suite rapide on both models: {time.monotonic() - began:.1f} s\n{done.stdout}")
    return done


def test_bench_run_prints_size_time_checks_cpu_ram_and_speed_for_each_model(quick_run):
    assert quick_run.returncode == 0, quick_run.stderr[-3000:]
    lines = quick_run.stdout.splitlines()
    assert re.fullmatch(r"Benchmark \d+: suite rapide, 4 steps, start warm\.", lines[0]), lines[0]
    assert re.fullmatch(r"Benchmark \d+: done on .+ · \d+ CPU\.", lines[5]), lines[5]
    # One line per answer as it comes: its time, its speed, and whether it passed its check.
    for line in lines[1:5]:
        assert re.search(r": \d+\.\d s, \d+\.\d tok/s, (pass|FAIL)$", line), line
    # The admin's table: a row per model, every column filled (a "—" would be a missing figure).
    assert lines[6].split() == ["Model", "Size", "Time", "OK", "CPU", "RAM", "tok/s"]
    table = {line.split()[0]: line for line in lines[7:]}
    assert sorted(table) == sorted([SMOLLM2, GEMMA])
    for model, row in table.items():
        size, time, ok, cpu, ram, speed = (
            r"\d+\.\d\d GB",
            r"\d+\.\d s",
            r"[0-2]/2",
            r"\d+ %",
            r"\d+\.\d\d GB \d+ %",
            r"\d+\.\d",
        )
        assert re.fullmatch(rf"{re.escape(model)} +{size} +{time} +{ok} +{cpu} +{ram} +{speed}", row), row


def test_the_command_line_run_is_stored_with_its_machine_and_every_figure(server, quick_run):
    assert quick_run.returncode == 0, quick_run.stderr[-3000:]
    run_id = int(quick_run.stdout.split()[1].rstrip(":"))
    [run] = server.query("SELECT * FROM benchmark_run WHERE id = ?", run_id)
    assert (run["source"], run["state"], run["suite_id"]) == ("cli", "done", "rapide")
    assert (run["steps_done"], run["steps_total"]) == (4, 4)
    assert json.loads(run["models"]) == [SMOLLM2, GEMMA]
    machine = json.loads(run["machine"])
    assert machine["cpu_model"] and machine["os"] and machine["sockets"] >= 1
    assert 1 <= machine["physical_cores"] <= machine["logical_cores"] == os.cpu_count()
    assert machine["memory_bytes"] > 2**30
    assert machine["engines"] and all(e["engine"] and e["version"] for e in machine["engines"])
    assert run["machine_label"] in quick_run.stdout

    results = server.query("SELECT * FROM benchmark_result WHERE run_id = ? ORDER BY id", run_id)
    assert [(r["model"], r["prompt_id"]) for r in results] == [
        (m, p) for m in (SMOLLM2, GEMMA) for p in PROMPTS
    ]
    for r in results:
        figures = {name: r[name] for name in ("tokens_per_second", "cpu_percent_mean", "memory_peak_bytes")}
        assert r["outcome"] == "complete" and all(figures.values()), dict(r)
        assert r["passed"] is not None and json.loads(r["check"])["note"], dict(r)  # pass or fail, and why
        assert r["answer"].strip() and r["engine_version"]
        speed, cpu, verdict = r["tokens_per_second"], r["cpu_percent_mean"], "pass" if r["passed"] else "fail"
        print(f"{r['model']} / {r['prompt_id']}: {speed:.1f} tok/s, CPU {cpu:.0f} %, {verdict}")


def test_an_exported_run_imported_on_another_server_shows_in_its_history(
    server, quick_run, models, tmp_path: Path
):
    assert quick_run.returncode == 0, quick_run.stderr[-3000:]
    run_id = quick_run.stdout.split()[1].rstrip(":")
    exported = server.flask("bench", "export", "--format", "json", run_id).stdout
    assert json.loads(exported)["runs"][0]["source"] == "cli"
    export_file = tmp_path / "benchmark.json"
    export_file.write_text(exported, encoding="utf-8")

    other = Server(tmp_path / "other-instance", models)
    assert other.flask("bench", "import", str(export_file)).stdout.startswith("1 run(s) imported")
    [listed] = other.flask("bench", "list").stdout.splitlines()
    assert re.search(rf" import +done +rapide +{SMOLLM2}, {GEMMA} · .+ · \d+ CPU$", listed), listed
    uid = server.query("SELECT uid FROM benchmark_run WHERE id = ?", int(run_id))[0]["uid"]
    assert [tuple(row) for row in other.query("SELECT uid, state FROM benchmark_run")] == [(uid, "done")]
    assert other.query("SELECT count(*) FROM benchmark_result")[0][0] == 4


def test_an_unknown_model_is_refused_with_a_clear_message_and_nothing_is_stored(server):
    before = server.query("SELECT count(*) FROM benchmark_run")[0][0]
    refused = server.flask(
        "bench", "run", "--suite", "rapide", "--models", f"{SMOLLM2},llama-9000", check=False
    )
    assert refused.returncode != 0
    assert "Error: Not available: llama-9000. Installed: " in refused.stderr
    assert SMOLLM2 in refused.stderr and GEMMA in refused.stderr  # what the admin can pick instead
    assert server.query("SELECT count(*) FROM benchmark_run")[0][0] == before


def test_the_command_line_refuses_to_run_beside_the_server_of_its_instance(server):
    """Its engines would be the server's twin: the model's memory twice, two decodes on one set
    of cores. The page's benchmark shares the server's engines instead."""
    from app.instance_lock import hold

    before = server.query("SELECT count(*) FROM benchmark_run")[0][0]
    lock = hold(Path(server.env["CAUSERIE_INSTANCE"]), "flask serve")  # a server runs there
    try:
        refused = server.flask("bench", "run", "--suite", "rapide", "--models", SMOLLM2, check=False)
    finally:
        lock.close()
    assert refused.returncode != 0
    assert "The server is running (flask serve (pid" in refused.stderr
    assert "Benchmarks page" in refused.stderr
    assert server.query("SELECT count(*) FROM benchmark_run")[0][0] == before
