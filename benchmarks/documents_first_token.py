"""What documents cost a chat's first token (issue 17), through the app's real HTTP interface.

What. The app (waitress on 127.0.0.1, a fresh instance folder) with its embedded llama-server and
the real model, a person signed in as the chat page does, documents uploaded through
`POST /documents` and sent with `document_ids`, first tokens read from the answer's stream:

* passages  the same question with 3 passages (a handbook too long to go whole, the budget
            DOCUMENT_TOKENS sized for three of its ~140-token passages) against without, each in
            a new conversation. For information: the passages' cost is reading them.
* second    the second turn of a conversation whose first turn carried documents, against the
            second turn of a plain conversation asked the same. Target <= 1.3x: the first turn's
            passages stay in its history exactly as sent, so llama-server's prompt cache holds
            them and only the new question is read. Two kinds of documents: one sent whole with
            the first turn (a short note: nothing left to retrieve), the target's case; and the
            handbook, whose second question brings passages of its own (for information: what a
            follow-up reads anew). Printed too: each first turn's prompt tokens against those its
            second turn took from the cache (equal: the passages were not read again). What the
            second turn reads anew is the first answer and the new question; a random-weights
            model's answer re-tokenizes into several times the tokens it was written in, more or
            fewer from one conversation to the next, so its ratio says little: read the tokens.
* indexing  a chat's first token while a 50-page PDF is being indexed (the question sent once
            the indexing has started; it counts only if the indexing was still under way when its
            answer ended) against idle. Target <= 1.2x: indexing runs at nice 19 (its thread,
            and the extraction in a child process whose session's group is niced too: with the
            kernel's autogroups, nice alone ranks a process only within its session, and
            llama-server has a session of its own), and its embedding waits while answers are
            being written. The niceness is read from /proc while it runs, and where the CPU went
            while each first token was awaited (the machine, llama-server, the niced indexing).

How. Repetitions alternate the two sides, the order swapped every time; both sides ask the same
question, each with a word of its own at its start (its repetition and side) so that no prompt
finds another's in the cache (the system prompt aside, as for any new conversation). First
token: the question sent -> its first `token` event, as the reader sees it; the app's own record
of each answer (the admin's dashboard CSV) adds the prompt tokens, those read anew (not from the
cache), the passages and their tokens, the retrieval and the wait for the indexing. Figures are
medians.

On a shared 2-core VM a figure varies 10-20 % from one minute to the next: the ratios of sides
measured seconds apart say more than either figure.

    .venv/bin/python -m benchmarks.documents_first_token                 # SmolLM2, 3 repetitions
    .venv/bin/python -m benchmarks.documents_first_token --model random-1.5b --only passages,second
    .venv/bin/python -m benchmarks.documents_first_token --smoke         # CI: each part once, tiny

--smoke exits non-zero only when something failed to run, never for a target missed.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from benchmarks.client import ChatClient, StreamedAnswer
from benchmarks.server import LiveServer
from benchmarks.serving import llama_server_binary, model_path, offer_model

PARTS = ("passages", "second", "indexing")
PASSWORD = "documents-benchmark-password-1"
BUDGET = 480  # tokens: three of the handbook's passages (124 to 157 tokens), never four
TARGETS = {"second": 1.3, "indexing": 1.2}

# The handbook: too long to go whole within the budget, so a question gets passages of it.
TOPICS = {
    "Télétravail": "Le télétravail est autorisé deux jours par semaine, le mardi et le jeudi de préférence, "
    "après accord écrit du responsable. Le salarié reste joignable de 9 h 30 à 16 h 30. L'entreprise "
    "fournit un ordinateur portable et rembourse 20 euros par mois de frais de connexion.",
    "Congés": "Les congés payés se posent dans l'outil RH au moins quatre semaines à l'avance. "
    "Trois semaines consécutives peuvent être prises entre le 1er mai et le 31 octobre. Les jours "
    "non pris au 31 mai sont perdus, sauf accord du service du personnel.",
    "Notes de frais": "Les notes de frais sont saisies avant le 5 du mois suivant, justificatifs "
    "scannés à l'appui. Un repas d'affaires est remboursé jusqu'à 35 euros par personne ; au-delà, "
    "l'accord du directeur financier est nécessaire.",
    "Sécurité du poste": "Le poste de travail se verrouille à chaque absence. Les mots de passe "
    "comptent au moins douze caractères et changent une fois par an. Une clé USB inconnue se remet "
    "au service informatique sans être branchée.",
    "Accès aux locaux": "Le badge ouvre les locaux de 7 h à 20 h en semaine. Un visiteur est "
    "accueilli à l'accueil, reçoit un badge de la journée et reste accompagné. Le week-end, "
    "l'accès se demande au gardien la veille avant midi.",
    "Formation": "Chaque salarié dispose de trois jours de formation par an. Les demandes passent "
    "par le responsable puis par le service formation, qui répond sous quinze jours. Les formations "
    "en ligne comptent au même titre que les stages.",
    "Déplacements": "Les trajets de moins de quatre heures se font en train, en seconde classe. "
    "L'hôtel est réservé par l'agence de voyages de l'entreprise, dans la limite de 110 euros la "
    "nuit à Paris et de 90 euros en province.",
    "Matériel": "Un équipement en panne se signale au support par le portail, qui répond sous "
    "quatre heures ouvrées. Un écran supplémentaire, un clavier ou un casque se commandent sans "
    "accord préalable, dans la limite de 150 euros par an.",
    "Horaires": "La journée de travail compte sept heures trente, avec une plage fixe de 10 h à "
    "16 h. Les heures supplémentaires sont accordées par écrit et récupérées dans le mois.",
    "Santé": "La visite médicale a lieu tous les deux ans. Un arrêt de travail se transmet sous "
    "quarante-huit heures. La mutuelle prend en charge les lunettes tous les deux ans.",
    "Restauration": "Le restaurant d'entreprise est ouvert de 11 h 45 à 14 h. Les titres-restaurant "
    "valent 10 euros, dont 6 payés par l'entreprise, pour les jours sans accès au restaurant.",
    "Environnement": "Le tri du papier, du plastique et des piles se fait à chaque étage. Les "
    "impressions sont recto verso par défaut et les imprimantes s'éteignent à 19 h.",
}
FILLER = (
    " Ce point du règlement s'applique à tous les établissements de l'entreprise, aux salariés en "
    "contrat à durée indéterminée comme aux stagiaires ; le service du personnel répond aux "
    "questions et tient à jour la version de référence sur l'intranet. Il a été revu avec les "
    "représentants du personnel."
)
QUESTIONS = (  # one per repetition
    "Combien de jours de télétravail par semaine sont autorisés ?",
    "Jusqu'à quel montant un repas d'affaires est-il remboursé ?",
    "À quelle heure le badge ouvre-t-il les locaux en semaine ?",
    "Combien de jours de formation chaque salarié a-t-il par an ?",
    "Quel est le plafond d'une nuit d'hôtel à Paris ?",
)
FOLLOW_UP = "Et qui faut-il prévenir ?"
NOTE = (
    "Note de service : à partir du 1er mars, la salle de réunion Rhin est réservée aux formations "
    "le lundi matin. Les réservations se font dans l'agenda partagé, au plus tard la veille à 17 h. "
    "Une réunion annulée se libère dans l'agenda pour que d'autres puissent la prendre."
)
CHAT_QUESTIONS = (
    "Donne-moi une idée de repas rapide pour ce soir.",
    "Comment rédiger un courriel de relance poli ?",
    "Quels conseils pour bien préparer une réunion ?",
    "Comment organiser sa semaine de travail ?",
    "Que mettre dans un compte rendu de réunion ?",
)


def handbook(tag: str) -> bytes:
    sections = [f"# Règlement intérieur, édition {tag}"]
    sections += [f"## {title}\n\n{text}{FILLER}" for title, text in TOPICS.items()]
    return "\n\n".join(sections).encode()


def note(tag: str) -> bytes:
    return f"# Note {tag}\n\n{NOTE}".encode()


def fifty_pages(tag: str) -> bytes:
    from tests.documents import numbered_pages, write_pdf

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "plan.pdf"
        write_pdf(path, [f"Édition {tag}. {page}" for page in numbered_pages(50)])
        return path.read_bytes()


# -- the app ------------------------------------------------------------------------------------
class DocumentsApp:
    """The app with its own llama-server and the model; one person signed in (the first account:
    the admin, who also reads the dashboard's records)."""

    def __init__(self, folder: Path, model: Path, args: argparse.Namespace) -> None:
        models_dir = folder / "models"
        models_dir.mkdir(parents=True)
        self.model_id = offer_model(models_dir, model, model.stem)
        env = {
            "MODELS_DIR": str(models_dir),
            "DEFAULT_MODEL": self.model_id,
            "LLAMA_ENGINE": "server",
            "LLAMA_SERVER_BIN": str(llama_server_binary()),
            "LLAMA_THREADS": str(args.threads),
            "LLAMA_CONTEXT": str(args.context),
            "GENERATION_TEMPERATURE": "0",
            "MAX_ANSWER_TOKENS": str(args.max_tokens),
            "DOCUMENT_TOKENS": str(args.budget),
            "SECRET_KEY": "documents-benchmark-only",
            "DEFAULT_LANGUAGE": "fr",
        }
        self.server = LiveServer(folder / "instance", env)
        self.client: ChatClient | None = None

    def __enter__(self) -> DocumentsApp:
        self.server.start()
        try:
            self.client = ChatClient(self.server.base_url, timeout=600)
            if not self.client.register("bench-admin", PASSWORD).ok:
                raise RuntimeError("cannot sign up")
        except BaseException:
            self.server.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.server.stop()

    def upload(self, name: str, content: bytes) -> int:
        response = self.client.session.post(
            self.client.url("/documents"),
            files={"file": (name, content)},
            headers={"X-CSRFToken": self.client.csrf_token, "Accept": "application/json"},
            timeout=120,
        )
        if response.status_code != 201:
            raise RuntimeError(f"upload of {name} refused: {response.status_code} {response.text[:200]}")
        return response.json()["document"]["id"]

    def state(self, document_id: int) -> dict:
        response = self.client.session.get(self.client.url(f"/documents/{document_id}"), timeout=60)
        response.raise_for_status()
        return response.json()["document"]

    def indexed(self, document_id: int, timeout: float = 600) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            document = self.state(document_id)
            if document["state"] in ("ready", "error"):
                if document["state"] == "error":
                    raise RuntimeError(f"document {document_id} not indexed: {document['error']}")
                return document
            time.sleep(0.2)
        raise RuntimeError(f"document {document_id} still not indexed after {timeout} s")

    def ask(self, conversation_id: int, question: str, documents: tuple[int, ...] = ()) -> Asked:
        answer = self.client.ask(conversation_id, question, documents)
        if answer.end is None or answer.end.name != "done" or not answer.tokens:
            raise RuntimeError(f"no answer to {question!r}: {answer.events[-3:]}")
        return Asked(answer)

    def new_conversation(self) -> int:
        return self.client.create_conversation(self.model_id)

    def records(self) -> dict[int, dict[str, str]]:
        """The app's own record of each answer (the dashboard's CSV), by the answer's id."""
        response = self.client.session.get(
            self.client.url("/admin/dashboard.csv"), params={"period": "24h"}, timeout=60
        )
        response.raise_for_status()
        return {int(row["message_id"]): row for row in csv.DictReader(io.StringIO(response.text))}

    def engine_pids(self) -> list[int]:
        children = psutil.Process(self.server.process.pid).children(recursive=True)
        return [c.pid for c in children if any(p.endswith("llama-server") for p in _cmdline(c))]

    def extraction_pids(self) -> list[int]:
        children = psutil.Process(self.server.process.pid).children(recursive=True)
        return [c.pid for c in children if "app.documents.extract_worker" in _cmdline(c)]


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.Error:
        return []


def nice_of(pid: int, tid: int | None = None) -> int | None:
    """Field 19 of /proc/PID[/task/TID]/stat: the niceness the kernel schedules it with."""
    path = f"/proc/{pid}/task/{tid}/stat" if tid else f"/proc/{pid}/stat"
    try:
        stat = Path(path).read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2 :].split()[16])


@dataclass
class Asked:
    answer: StreamedAnswer

    @property
    def first_token(self) -> float:
        return self.answer.tokens[0].at - self.answer.sent_at

    @property
    def first_token_at(self) -> float:
        return self.answer.tokens[0].at


@dataclass
class Side:
    """One side of a comparison: its first tokens (s) and the app's records of its answers."""

    name: str
    first_tokens: list[float] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    first_turns: list[int] = field(default_factory=list)  # a second turn's: its first turn's answer

    def add(self, asked: Asked, first_turn: Asked | None = None) -> None:
        self.first_tokens.append(asked.first_token)
        self.answers.append(asked.answer.message_id)
        if first_turn is not None:
            self.first_turns.append(first_turn.answer.message_id)

    @property
    def median(self) -> float:
        return statistics.median(self.first_tokens) if self.first_tokens else float("nan")


def tagged(question: str, rep: int, side: str) -> str:
    """The question with a word of its own at its start: neither the other side's prompt nor an
    earlier repetition's is in the engine's cache (the system prompt aside, as for any new chat)."""
    return f"({rep}{side}) {question}"


def in_turns(repeat: int, one, other) -> None:
    """`one(rep)` and `other(rep)` each repetition, the order swapped every time."""
    for rep in range(repeat):
        for run in (one, other) if rep % 2 == 0 else (other, one):
            run(rep)


# -- the parts ------------------------------------------------------------------------------------
def passages_part(app: DocumentsApp, repeat: int) -> tuple[Side, Side]:
    with_documents, without = Side("with 3 passages"), Side("without")
    handbooks = []
    for rep in range(repeat):  # indexed beforehand: this part is about reading, not waiting
        handbooks.append(app.upload(f"reglement-{rep}-{secrets.token_hex(3)}.md", handbook(str(rep))))
    for document in handbooks:
        app.indexed(document)

    def documents(rep: int) -> None:
        question = tagged(QUESTIONS[rep % len(QUESTIONS)], rep, "d")
        with_documents.add(app.ask(app.new_conversation(), question, (handbooks[rep],)))

    def plain(rep: int) -> None:
        without.add(app.ask(app.new_conversation(), tagged(QUESTIONS[rep % len(QUESTIONS)], rep, "p")))

    in_turns(repeat, documents, plain)
    return with_documents, without


def second_part(app: DocumentsApp, repeat: int) -> tuple[Side, Side, Side]:
    whole, retrieved = Side("documents (a note sent whole)"), Side("documents (handbook)")
    plain_side = Side("plain")
    notes, handbooks = [], []
    for rep in range(repeat):
        notes.append(app.upload(f"note-{rep}-{secrets.token_hex(3)}.md", note(str(rep))))
        handbooks.append(app.upload(f"reglement-b-{rep}-{secrets.token_hex(3)}.md", handbook(f"b{rep}")))
    for document in notes + handbooks:
        app.indexed(document)

    def with_note(rep: int) -> None:
        conversation = app.new_conversation()
        first = app.ask(conversation, tagged("Que dit cette note ?", rep, "n"), (notes[rep],))
        whole.add(app.ask(conversation, FOLLOW_UP), first)

    def with_handbook(rep: int) -> None:
        conversation = app.new_conversation()
        first = app.ask(conversation, tagged(QUESTIONS[rep % len(QUESTIONS)], rep, "h"), (handbooks[rep],))
        retrieved.add(app.ask(conversation, FOLLOW_UP), first)

    def plain(rep: int) -> None:
        conversation = app.new_conversation()
        first = app.ask(conversation, tagged("Que dit cette note ?", rep, "p"))
        plain_side.add(app.ask(conversation, FOLLOW_UP), first)

    def documents(rep: int) -> None:
        with_note(rep)
        with_handbook(rep)

    in_turns(repeat, documents, plain)
    return whole, retrieved, plain_side


@dataclass
class Watch:
    """A document's indexing seen from outside: when it was seen under way and done, and the
    niceness of the work doing it (the extraction child; the server's threads not at 0)."""

    started: float = 0.0
    ended: float = 0.0
    child_nice: set[int] = field(default_factory=set)
    thread_nice: set[int] = field(default_factory=set)
    engine_nice: set[int] = field(default_factory=set)
    # Set while a question is asked: no request of this watch then adds to the app's work.
    quiet: threading.Event = field(default_factory=threading.Event)


def watch_indexing(app: DocumentsApp, document_id: int, watch: Watch, stop: threading.Event) -> None:
    server = app.server.process.pid
    while not stop.is_set():
        if watch.quiet.is_set():
            time.sleep(0.05)
            continue
        state = app.state(document_id)["state"]
        now = time.perf_counter()
        if state == "indexing" and not watch.started:
            watch.started = now
        if state in ("ready", "error"):
            watch.ended = now
            return
        for pid in app.extraction_pids():
            if (nice := nice_of(pid)) is not None:
                watch.child_nice.add(nice)
        for task in Path(f"/proc/{server}/task").iterdir():
            if (nice := nice_of(server, int(task.name))) not in (None, 0):
                watch.thread_nice.add(nice)
        for pid in app.engine_pids():
            if (nice := nice_of(pid)) is not None:
                watch.engine_nice.add(nice)
        time.sleep(0.1)


TICK = os.sysconf("SC_CLK_TCK")


def _ticks(path: str) -> int:
    """utime + stime of /proc/PID[/task/TID]/stat, in clock ticks; 0 once it is gone."""
    try:
        stat = Path(path).read_text()
    except OSError:
        return 0
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])


class CpuSampler:
    """Where the machine's CPU went, sampled every 0.1 s: the whole machine's busy time, the
    app's llama-server, and the indexing (every task of the app's process tree running niced:
    the indexer thread and the extraction child). Read over any window afterwards."""

    def __init__(self, app: DocumentsApp) -> None:
        self.app = app
        # time, machine busy, machine total, niced (all), engine, niced extraction child
        self.samples: list[tuple[float, int, int, int, int, int]] = []
        self._last: dict[str, int] = {}
        self._niced = self._child = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        server = self.app.server.process.pid
        while not self._stop.is_set():
            numbers = [int(n) for n in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
            total, idle = sum(numbers[:8]), numbers[3] + numbers[4]
            tasks = [(server, int(t.name)) for t in Path(f"/proc/{server}/task").iterdir()]
            tasks += [(pid, None) for pid in self.app.extraction_pids()]
            for pid, tid in tasks:
                path = f"/proc/{pid}/task/{tid}/stat" if tid else f"/proc/{pid}/stat"
                ticks, seen = _ticks(path), self._last.get(path, 0)
                if nice_of(pid, tid) not in (None, 0):
                    self._niced += max(0, ticks - seen)
                    self._child += 0 if tid else max(0, ticks - seen)
                self._last[path] = ticks
            engine = sum(_ticks(f"/proc/{pid}/stat") for pid in self.app.engine_pids())
            self.samples.append((time.perf_counter(), total - idle, total, self._niced, engine, self._child))
            self._stop.wait(0.1)

    def window(self, start: float, end: float) -> dict[str, float]:
        """Shares over [start, end]: the machine busy (of all cores), llama-server and the niced
        indexing (of one core)."""
        inside = [s for s in self.samples if start - 0.1 <= s[0] <= end + 0.1]
        if len(inside) < 2:
            return {}
        first, last = inside[0], inside[-1]
        seconds = (last[0] - first[0]) or 1e-9
        return {
            "machine": 100 * (last[1] - first[1]) / max(1, last[2] - first[2]),
            "engine": 100 * (last[4] - first[4]) / TICK / seconds,
            "indexing": 100 * (last[3] - first[3]) / TICK / seconds,
            "child": 100 * (last[5] - first[5]) / TICK / seconds,
        }


def indexing_part(app: DocumentsApp, repeat: int) -> tuple[Side, Side, list[Watch], list[str]]:
    busy, idle, watches, shares = Side("while a 50-page PDF is indexed"), Side("idle"), [], []
    sampler = CpuSampler(app)

    def share(name: str, rep: int, asked: Asked) -> None:
        """Where the CPU went while this answer's first token was awaited."""
        found = sampler.window(asked.answer.sent_at, asked.first_token_at)
        if found:
            shares.append(
                f"  {name} {rep}: {asked.first_token * 1000:.0f} ms; meanwhile the machine "
                f"{found['machine']:.0f} % busy (of all cores), llama-server {found['engine']:.0f} % "
                f"of a core, the niced indexing {found['indexing']:.1f} % of a core (its extraction "
                f"child {found['child']:.1f} %)"
            )

    def indexing(rep: int) -> None:
        content = fifty_pages(f"{rep}-{secrets.token_hex(3)}")
        document = app.upload(f"plan-{rep}.pdf", content)
        watch, stop = Watch(), threading.Event()
        watcher = threading.Thread(target=watch_indexing, args=(app, document, watch, stop), daemon=True)
        watcher.start()
        deadline = time.monotonic() + 60
        while not watch.started and not watch.ended and time.monotonic() < deadline:
            time.sleep(0.05)
        watch.quiet.set()
        asked = app.ask(app.new_conversation(), tagged(CHAT_QUESTIONS[rep % len(CHAT_QUESTIONS)], rep, "i"))
        watch.quiet.clear()
        still = app.state(document)["state"] in ("waiting", "indexing")  # all along the answer
        watcher.join(timeout=600)
        stop.set()
        watches.append(watch)
        if watch.started and still:
            busy.add(asked)
            share("indexing", rep, asked)
        else:
            print(f"  (repetition {rep}: the indexing ended before the answer; not counted)")

    def plain(rep: int) -> None:
        asked = app.ask(app.new_conversation(), tagged(CHAT_QUESTIONS[rep % len(CHAT_QUESTIONS)], rep, "q"))
        idle.add(asked)
        share("idle", rep, asked)

    with sampler:
        in_turns(repeat, indexing, plain)
    return busy, idle, watches, shares


# -- the report ---------------------------------------------------------------------------------
def _median_of(records: dict[int, dict[str, str]], answers: list[int], column: str) -> str:
    values = [float(records[a][column]) for a in answers if a in records and records[a].get(column)]
    if not values:
        return "—"
    median = statistics.median(values)
    return f"{median:.3f}" if column.endswith("seconds") else f"{median:.0f}"


def describe(side: Side, records: dict[int, dict[str, str]]) -> str:
    runs = ", ".join(f"{s * 1000:.0f}" for s in side.first_tokens)
    columns = {
        "first token s": "first_token_seconds",
        "queue s": "queue_seconds",
        "prompt": "prompt_tokens",
        "reading tok/s": "prompt_tokens_per_second",
        "cached": "cached_prompt_tokens",
        "passages": "passages",
        "passage tokens": "passage_tokens",
        "retrieval s": "retrieval_seconds",
        "wait s": "documents_wait_seconds",
    }
    recorded = " · ".join(f"{name} {_median_of(records, side.answers, c)}" for name, c in columns.items())
    anew = [
        int(records[a]["prompt_tokens"]) - int(records[a]["cached_prompt_tokens"] or 0)
        for a in side.answers
        if a in records and records[a].get("prompt_tokens")
    ]
    recorded += f" · read anew {statistics.median(anew):.0f}" if anew else ""
    return (
        f"  {side.name:<34} first token {side.median * 1000:7.0f} ms  ({runs})\n"
        f"      the app's records (medians): {recorded}"
    )


def cached_history(side: Side, records: dict[int, dict[str, str]]) -> str:
    """Whether a second turn found its whole first turn (passages included) in the prompt
    cache: the first turn's prompt tokens against the tokens the second took from the cache."""
    pairs = [
        (records[first]["prompt_tokens"], records[second]["cached_prompt_tokens"] or "0")
        for first, second in zip(side.first_turns, side.answers, strict=True)
        if first in records and second in records
    ]
    seen = ", ".join(f"{prompt} -> {cached}" for prompt, cached in pairs)
    return f"  {side.name}: the first turn's prompt -> taken from the cache by the second: {seen}"


def ratio_line(label: str, one: Side, reference: Side, target: float | None) -> str:
    ratio = one.median / reference.median if reference.median else float("nan")
    verdict = "" if target is None else f"  target <= {target}x: " + ("met" if ratio <= target else "MISSED")
    pairs = ""
    if len(one.first_tokens) == len(reference.first_tokens) > 1:  # each repetition's two sides
        each = [a / b for a, b in zip(one.first_tokens, reference.first_tokens, strict=True)]
        pairs = f"\n    each repetition's ratio: {', '.join(f'{r:.2f}x' for r in each)}"
    return f"  {label}: {ratio:.2f}x (of the medians){verdict}{pairs}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="smollm2", help="smollm2 (default), gemma, random-1.5b, a GGUF")
    parser.add_argument("--only", help=f"parts, comma-separated: {','.join(PARTS)} (default: all)")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions per side (default 3)")
    parser.add_argument("--threads", type=int, default=2, help="llama.cpp threads (default 2)")
    parser.add_argument("--context", type=int, default=2048, help="tokens per slot (default 2048)")
    parser.add_argument("--max-tokens", type=int, default=16, help="longest answer (default 16)")
    parser.add_argument("--budget", type=int, default=BUDGET, help=f"DOCUMENT_TOKENS (default {BUDGET})")
    parser.add_argument("--smoke", action="store_true", help="each part once, 4-token answers (CI)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.repeat, args.max_tokens = 1, 4
    args.parts = [p for p in (args.only or ",".join(PARTS)).split(",") if p]
    unknown = set(args.parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    model = model_path(args.model)
    print(f"documents and the first token: {model.name}, {args.repeat} repetitions, budget {args.budget}")
    print(f"  {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at the start")
    results: dict[str, tuple] = {}
    with tempfile.TemporaryDirectory(prefix="documents-first-token-") as folder:
        with DocumentsApp(Path(folder), model, args) as app:
            app.ask(app.new_conversation(), "Bonjour !")  # the model loaded: no part pays for it
            if "passages" in args.parts:
                results["passages"] = passages_part(app, args.repeat)
            if "second" in args.parts:
                results["second"] = second_part(app, args.repeat)
            if "indexing" in args.parts:
                results["indexing"] = indexing_part(app, args.repeat)
            records = app.records()
    print(f"  load average {os.getloadavg()[0]:.2f} at the end\n")
    if "passages" in results:
        with_documents, without = results["passages"]
        print("(a) the same question with 3 passages, against without (a new conversation each)")
        print(describe(with_documents, records) + "\n" + describe(without, records))
        print(ratio_line("with passages / without", with_documents, without, None))
    if "second" in results:
        whole, retrieved, plain = results["second"]
        print("(b) the second turn of a conversation with documents, against a plain one")
        print("\n".join(describe(side, records) for side in (whole, retrieved, plain)))
        print("\n".join(cached_history(side, records) for side in (whole, retrieved, plain)))
        print(ratio_line("note sent whole in turn 1, turn 2 / plain turn 2", whole, plain, TARGETS["second"]))
        print(ratio_line("handbook, turn 2 with passages of its own / plain", retrieved, plain, None))
    if "indexing" in results:
        busy, idle, watches, shares = results["indexing"]
        print("(c) a chat's first token while a 50-page PDF is indexed, against idle")
        print(describe(busy, records) + "\n" + describe(idle, records))
        print(ratio_line("while indexing / idle", busy, idle, TARGETS["indexing"]))
        print("\n".join(shares))
        for n, w in enumerate(watches):
            seconds = f"{w.ended - w.started:.1f} s" if w.started and w.ended else "?"
            print(
                f"  indexing {n}: seen under way for {seconds}; nice of the extraction child "
                f"{sorted(w.child_nice) or 'not seen'}, of the server's niced threads "
                f"{sorted(w.thread_nice) or 'none'}, of llama-server {sorted(w.engine_nice)}"
            )
    failed = [name for name in args.parts if name not in results]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
