"""The chat pages and the HTTP interface they use (documented in the README)."""

from __future__ import annotations

import time
from urllib.parse import quote

from flask import (
    abort,
    current_app,
    flash,
    g,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user

from app import answers
from app.answers import registry, sampling
from app.answers.asking import (
    account_active,
    check_prompt,
    field,
    offered_or_refused,
    offered_to,
    open_stream,
    refused_response,
    session_still_valid,
    stream_place,
)
from app.answers.pipeline import Asking, Refused, new_answer_id
from app.answers.saving import save_answer
from app.answers.stream import resume_point, sse_response
from app.chat import bp, services, sidebar
from app.chat.titles import plain_title
from app.database import end_transaction
from app.documents import access
from app.documents.questions import budget_for, preparation
from app.errors import render_error, wants_json
from app.knowledge import services as knowledge
from app.knowledge.choice import collection_choice
from app.llm import services as llm
from app.llm.types import GenerationOptions, Outcome
from app.models import utcnow

bp.register_error_handler(Refused, refused_response)

MAX_ATTACHMENTS = 10


def _page(conversation=None):
    catalogue = llm().catalogue
    entries = catalogue.entries()  # once: every engine is asked, and the admin's settings read
    g.model_names = catalogue.names(entries)  # what the page calls each model (llm.model_name)
    offered = offered_to(current_user, entries)  # a model kept for other groups is not shown
    default = catalogue.default(offered)
    selected = conversation.model if conversation else (default.id if default else "")
    current = next((e for e in entries if e.id == selected), None)
    thread = services.thread_of(conversation) if conversation else []
    config = current_app.config
    conversations = services.conversations_of(current_user)
    return render_template(
        "chat/index.html",
        conversation=conversation,
        thread=thread,
        versions=services.versions(conversation, thread) if conversation else {},
        conversations=conversations,
        groups=sidebar.grouped(conversations, utcnow()),
        # Conversations with an answer being written: marked in the sidebar.
        answering=registry().answering(c.id for c in conversations),
        models=offered,
        selected_model=selected,
        # A conversation keeps its model: one no longer offered is shown, marked unavailable.
        model_unavailable=bool(conversation) and all(e.id != selected for e in offered),
        model_unreachable=current is not None and not current.info.reachable,
        # Offered, but kept for groups this person is not in: said so, not as a model gone.
        model_kept=current is not None and current.offered and all(e.id != selected for e in offered),
        sampling_choices=sampling.CHOICES,
        chosen=conversation.options if conversation else {},
        # What an empty field means: the admin's setting for the model, else the configuration's.
        defaults=_defaults(current, config),
        answer_limit=sampling.answer_limit(current, config["MAX_ANSWER_TOKENS"]),
        system_prompt_chars=services.SYSTEM_PROMPT_CHARS,
        # The knowledge bases the user may pick (the settings' picker, # in the message box).
        collections=access.readable_collections(current_user),
        chosen_collections=conversation.collection_ids if conversation else [],
        manages_knowledge=access.manages_knowledge(current_user),
    )


def _defaults(entry, config) -> dict:
    """Each sampling choice's value when the user leaves it empty ("" where the engine decides)."""
    prefs = entry.prefs if entry else None

    def admin(name, configured=""):
        value = getattr(prefs, name, None)
        return configured if value is None else value

    return {
        "temperature": admin("temperature", config["GENERATION_TEMPERATURE"]),
        "top_p": admin("top_p"),
        "top_k": admin("top_k"),
        "max_tokens": sampling.answer_limit(entry, config["MAX_ANSWER_TOKENS"]),
    }


@bp.get("/")
def index():
    """A new, empty conversation."""
    return _page()


@bp.get("/c/<int:conversation_id>")
def conversation(conversation_id: int):
    """One conversation with its whole history."""
    return _page(services.owned_conversation(current_user, conversation_id))


@bp.get("/models")
def models():
    """The models a user can pick, the default first."""
    catalogue = llm().catalogue
    offered = offered_to(current_user)
    default = catalogue.default(offered)
    return jsonify(
        default=default.id if default else None,
        models=[
            # No engine: which host serves a model is the admin's business (and its address).
            {"id": e.id, "name": e.name, "description": e.description, "thinking": e.info.thinking}
            for e in offered
        ],
    )


@bp.get("/conversations")
def list_conversations():
    """The user's conversations, newest first; `answering`: an answer of it is being written."""
    conversations = services.conversations_of(current_user)
    answering = registry().answering(c.id for c in conversations)
    return jsonify(conversations=[services.conversation_as_dict(c, c.id in answering) for c in conversations])


def _think_choice() -> bool | None:
    """The request's thinking choice: True, False, or None (the admin's default); anything
    else ends the request with a 400. Absent counts as "": new conversations need not say."""
    data = request.get_json(silent=True) if request.is_json else request.form
    value = data.get("think", "") if isinstance(data, dict) else ""
    if not isinstance(value, str) or value not in sampling.THINK_CHOICES:
        abort(make_response(*render_error(400, _("Thinking is either on or off."))))
    return sampling.THINK_CHOICES[value]


@bp.post("/conversations")
def create_conversation():
    """Start a conversation with the chosen model (the default when none is given), and its
    own system prompt and sampling choices when given (a preset fills them in the page)."""
    default = llm().catalogue.default(offered_to(current_user))
    model_id = field("model") or (default.id if default else "")
    if default is None:
        return render_error(409, _("No usable model is installed on this server."))
    entry = offered_or_refused(model_id, 409)
    think = _think_choice()
    system_prompt, options = _settings_choices(entry)
    collection_ids = collection_choice(current_user)
    conversation = services.create_conversation(current_user, model_id, think, system_prompt, options)
    if collection_ids:
        knowledge.choose_for(conversation, collection_ids)
    url = url_for("chat.conversation", conversation_id=conversation.id)
    if wants_json():
        return jsonify(id=conversation.id, url=url, model=model_id), 201
    return redirect(url)


def _settings_choices(entry) -> tuple[str, dict]:
    """The request's system prompt and sampling choices; a bad one ends it with a 400."""
    system_prompt = field("system_prompt").strip()
    if len(system_prompt) > services.SYSTEM_PROMPT_CHARS:
        message = _(
            "The system prompt is too long (%(max)d characters at most).", max=services.SYSTEM_PROMPT_CHARS
        )
        abort(make_response(*render_error(400, message)))
    data = request.get_json(silent=True) if request.is_json else request.form
    limit = sampling.answer_limit(entry, current_app.config["MAX_ANSWER_TOKENS"])
    try:
        options = sampling.parse(data if isinstance(data, dict) else {}, limit)
    except sampling.Refused as refused:
        abort(make_response(*render_error(400, str(refused))))
    return system_prompt, options


@bp.post("/conversations/<int:conversation_id>/settings")
def change_settings(conversation_id: int):
    """The conversation's own system prompt and sampling choices (empty: the admin's), and
    its knowledge bases."""
    conversation = services.owned_conversation(current_user, conversation_id)
    entry = llm().catalogue.entry(conversation.model)
    system_prompt, options = _settings_choices(entry)
    collection_ids = collection_choice(current_user)  # None: the request leaves them as they are
    services.set_settings(conversation, system_prompt, options)
    if collection_ids is not None:
        knowledge.choose_for(conversation, collection_ids)
    if wants_json():
        return jsonify(services.conversation_as_dict(conversation))
    flash(_("Settings saved."))
    return redirect(url_for("chat.conversation", conversation_id=conversation.id))


@bp.get("/conversations/<int:conversation_id>/messages")
def list_messages(conversation_id: int):
    """The stored history of a conversation."""
    conversation = services.owned_conversation(current_user, conversation_id)
    return jsonify(
        conversation=services.conversation_as_dict(conversation),
        messages=[services.message_as_dict(m) for m in conversation.messages],
        thread=[m.id for m in services.thread_of(conversation)],
    )


@bp.post("/conversations/<int:conversation_id>/messages")
def send_message(conversation_id: int):
    """Store the user's message and start the model's answer; stream it as Server-Sent Events."""
    received_at = time.perf_counter()  # every time measured for this answer counts from here
    conversation = services.owned_conversation(current_user, conversation_id)
    content = field("content").strip()
    try:
        check_prompt(content)
        documents = _attachments()
        return _answer(
            conversation,
            received_at,
            lambda job, system_prompt: services.add_exchange(
                conversation, content, job, registry().is_live, system_prompt, document_ids=documents
            ),
        )
    except Refused:
        # A conversation exists for its messages: refused its first one (too long, the model
        # gone, the queue full), it goes, or every list would show an empty "New conversation".
        services.forget_if_empty(conversation_id)
        raise


@bp.post("/messages/<int:message_id>/edit")
def edit(message_id: int):
    """Send a new version of one of the user's questions; the model answers it afresh. The
    earlier version and what followed it stay one click away."""
    received_at = time.perf_counter()
    question = services.owned_message(current_user, message_id)
    if question.role != "user":
        return render_error(400, _("Only your own messages can be edited."))
    content = field("content").strip()
    check_prompt(content)
    documents = _attachments()
    conversation = question.conversation
    return _answer(
        conversation,
        received_at,
        lambda job, system_prompt: services.add_exchange(
            conversation,
            content,
            job,
            registry().is_live,
            system_prompt,
            replacing=question,
            document_ids=documents,
        ),
    )


def _attachments() -> tuple[int, ...]:
    """The request's `document_ids`: the sender's own attachments not sent yet; Refused (400)
    for anything else (not a list of ids, removed meanwhile, someone else's)."""
    data = request.get_json(silent=True) if request.is_json else None
    wanted = data.get("document_ids", []) if isinstance(data, dict) else request.form.getlist("document_ids")
    if not isinstance(wanted, list) or len(wanted) > MAX_ATTACHMENTS:
        raise Refused(400, _("At most %(count)d files can be sent with one message.", count=MAX_ATTACHMENTS))
    try:
        ids = [int(i) for i in wanted if not isinstance(i, bool)]
    except (TypeError, ValueError):
        ids = None
    if ids and not all(0 < i < 2**63 for i in ids):  # past the database's integers: no file
        ids = None
    found = (
        services.unsent_attachments(current_user, ids)
        if ids is not None and len(ids) == len(wanted)
        else None
    )
    if found is None:
        raise Refused(400, _("A file sent with this message is no longer available: attach it again."))
    return found


@bp.post("/messages/<int:message_id>/regenerate")
def regenerate(message_id: int):
    """Ask the model again for the answer to the same question; earlier answers are kept."""
    received_at = time.perf_counter()
    answer = services.owned_message(current_user, message_id)
    conversation = answer.conversation
    question = next((m for m in conversation.messages if m.id == answer.parent_id), None)
    if answer.role != "assistant" or question is None:
        return render_error(400, _("Only an answer can be written again."))
    return _answer(
        conversation,
        received_at,
        lambda job, system_prompt: services.add_answer(
            conversation, question, job, registry().is_live, system_prompt
        ),
    )


def _answer(conversation, received_at: float, store):
    """Start a new answer of the conversation and stream it as Server-Sent Events.

    `store(job, system_prompt)` stores what is asked and the empty answer (an Exchange). The
    answer is a job of its own: leaving the page does not end it (GET …/events follows it
    again).
    """
    entry = offered_or_refused(conversation.model, 409)
    options = _options_for(conversation, entry)
    # Given back if the answer does not start (it goes on if it did: only this stream never opened).
    with stream_place(current_user.id) as ticket:
        job = new_answer_id()
        with answers.place(current_user.id) as held, registry().starting(job):
            try:
                exchange = store(job, entry.prefs.system_prompt)
            except services.Busy:
                raise Refused(
                    409, _("An answer is still being written here. Wait for it or stop it.")
                ) from None
            except services.Gone:
                abort(404)
            asking = Asking(
                prepare=preparation(exchange.question_id, current_user.id, budget_for(entry)),
                user_id=current_user.id,
                entry=entry,
                messages=exchange.prompt,
                options=options,
                received_at=received_at,
                message_id=exchange.answer_id,
                conversation_id=conversation.id,
                detailed_errors=current_user.is_admin,
                allowed=account_active(current_user.id),
            )
            try:
                live = answers.start(asking, held, job)
            except BaseException:
                save_answer(exchange.answer_id, job, "", Outcome.ERROR, _("The answer could not be started."))
                raise
        registry().settle(ticket)
        end_transaction()
    headers = {
        "X-Message-Id": str(exchange.answer_id),
        "X-Question-Id": str(exchange.question_id),
        # The title a first message gave, for the page to show at once (percent-encoded UTF-8:
        # a header is Latin-1).
        "X-Conversation-Title": quote(plain_title(exchange.title), safe=""),
    }
    return sse_response(live, ticket, readable=session_still_valid(), headers=headers)


@bp.get("/messages/<int:message_id>/events")
def answer_events(message_id: int):
    """Follow an answer being written (again): its events after `Last-Event-ID` (or `?after=`),
    then the rest as they come. 410 once it is no longer in memory: the stored message is it."""
    message = services.owned_message(current_user, message_id)
    live = registry().get(message.job)
    if live is None or live.message_id != message.id:
        return render_error(410, _("This answer is no longer being written: reload the page to read it."))
    end_transaction()
    ticket = open_stream(current_user.id)
    return sse_response(
        live,
        ticket,
        after=resume_point(),
        readable=session_still_valid(),
        headers={"X-Message-Id": str(message.id)},
    )


def _options_for(conversation, entry) -> GenerationOptions:
    """The options of this conversation's next answer: configured, the admin's, the user's."""
    config = current_app.config
    limit = sampling.answer_limit(entry, config["MAX_ANSWER_TOKENS"])
    chosen = sampling.within(conversation.options or {}, limit)
    return llm().catalogue.options_for(entry, sampling.configured(), think=conversation.think, chosen=chosen)


@bp.post("/messages/<int:message_id>/select")
def select(message_id: int):
    """Show another version of a turn (an earlier answer, an earlier question)."""
    message = services.owned_message(current_user, message_id)
    services.select(message.conversation, message)
    if wants_json():
        return jsonify(services.conversation_as_dict(message.conversation))
    url = url_for("chat.conversation", conversation_id=message.conversation_id, _anchor=f"m-{message.id}")
    return redirect(url)


@bp.post("/messages/<int:message_id>/feedback")
def feedback(message_id: int):
    """Thumbs up or down on an answer ("" takes the verdict back); the admin sees them per model."""
    message = services.owned_message(current_user, message_id)
    value = field("value")
    if message.role != "assistant":
        return render_error(400, _("Only answers can be rated."))
    if value not in services.FEEDBACK:
        return render_error(400, _("A rating is either up or down."))
    services.set_feedback(message, services.FEEDBACK[value])
    if wants_json():
        return jsonify(id=message.id, feedback=value)
    url = url_for("chat.conversation", conversation_id=message.conversation_id, _anchor=f"m-{message.id}")
    return redirect(url)


@bp.post("/messages/<int:message_id>/stop")
def stop(message_id: int):
    """Stop an answer being written, waiting or not; what was written so far is kept."""
    message = services.owned_message(current_user, message_id)
    live = registry().get(message.job)
    if live is None or live.message_id != message.id or live.ended.is_set():
        return jsonify(stopped=False)
    live.cancel(Outcome.STOPPED)
    return jsonify(stopped=True)


@bp.post("/conversations/<int:conversation_id>/rename")
def rename(conversation_id: int):
    """Give a conversation a new title."""
    conversation = services.owned_conversation(current_user, conversation_id)
    title = " ".join(field("title").split())
    if not title or len(title) > 200:
        return render_error(400, _("A title has 1 to 200 characters."))
    services.rename(conversation, title)
    if wants_json():
        return jsonify(services.conversation_as_dict(conversation))
    return redirect(url_for("chat.conversation", conversation_id=conversation.id))


@bp.post("/conversations/<int:conversation_id>/pin")
def pin(conversation_id: int):
    """Keep a conversation at the top of the sidebar (`pinned`: "1" or true), or let it go back
    among the others by its date ("0" or false)."""
    conversation = services.owned_conversation(current_user, conversation_id)
    data = request.get_json(silent=True) if request.is_json else request.form
    pinned = data.get("pinned") if isinstance(data, dict) else None
    if not (isinstance(pinned, bool) or pinned in ("0", "1")):
        return render_error(400, _("A conversation is either pinned or not."))
    services.set_pinned(conversation, pinned in (True, "1"))
    if wants_json():
        return jsonify(services.conversation_as_dict(conversation))
    return redirect(url_for("chat.conversation", conversation_id=conversation.id))


@bp.post("/conversations/<int:conversation_id>/delete")
def delete(conversation_id: int):
    """Delete a conversation and its messages, stopping an answer still being written."""
    conversation = services.owned_conversation(current_user, conversation_id)
    registry().cancel_conversation(conversation.id)  # first: its job must not outlive its messages
    services.delete(conversation)
    if wants_json():
        return jsonify(deleted=conversation_id)
    return redirect(url_for("chat.index"))


@bp.post("/conversations/<int:conversation_id>/model")
def change_model(conversation_id: int):
    """Switch the model that writes the next answers of a conversation."""
    conversation = services.owned_conversation(current_user, conversation_id)
    entry = offered_or_refused(field("model"), 400)
    services.set_model(conversation, entry.id)
    if wants_json():
        return jsonify(services.conversation_as_dict(conversation))
    return redirect(url_for("chat.conversation", conversation_id=conversation.id))


@bp.post("/conversations/<int:conversation_id>/thinking")
def change_thinking(conversation_id: int):
    """Let a reasoning model think before answering in this conversation, or not."""
    conversation = services.owned_conversation(current_user, conversation_id)
    services.set_thinking(conversation, _think_choice())
    if wants_json():
        return jsonify(services.conversation_as_dict(conversation))
    return redirect(url_for("chat.conversation", conversation_id=conversation.id))
