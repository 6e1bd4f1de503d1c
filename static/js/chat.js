// The chat page: sends a message, reads the answer's event stream, renders it as it arrives.
// The HTTP interface it uses is documented in the README.
"use strict";

(() => {
  const chat = document.getElementById("chat");
  if (!chat) return;
  const i18n = JSON.parse(chat.dataset.i18n);
  const csrfToken = document.querySelector('meta[name="csrf-token"]').content;
  const messages = document.getElementById("messages");
  const thread = document.getElementById("thread");
  const composer = document.getElementById("composer");
  const prompt = document.getElementById("prompt");
  const sendButton = document.getElementById("send");
  const stopButton = document.getElementById("stop");
  const composerError = document.getElementById("composer-error");
  const modelSelect = document.getElementById("model");
  const modelForm = document.querySelector("[data-model-form]");
  const thinkForm = document.querySelector("[data-think-form]");
  const thinkBox = document.getElementById("think");
  let current = null; // the answer being streamed: { messageId, stopRequested }
  let savingThinking = Promise.resolve(); // a message waits for the thinking switch to be saved

  function format(template, values) {
    return template.replace(/\{(\w+)\}/g, (_, key) => values[key]);
  }

  function clone(id) {
    return document.getElementById(id).content.firstElementChild.cloneNode(true);
  }

  function nearEnd() {
    return thread.scrollHeight - thread.scrollTop - thread.clientHeight < 80;
  }

  function scrollToEnd(force) {
    if (force || nearEnd()) thread.scrollTop = thread.scrollHeight;
  }

  function show(element, visible) {
    element.classList.toggle("hidden", !visible);
  }

  function setBusy(busy) {
    show(sendButton, !busy);
    show(stopButton, busy);
    stopButton.disabled = false;
    if (modelSelect) modelSelect.disabled = busy;
    // Another version is another page: not while this answer is written, whose ending would be missed.
    messages.querySelectorAll("[data-version-step] button").forEach((button) => {
      button.disabled = busy || !button.form.getAttribute("action");
    });
  }

  function showComposerError(text) {
    composerError.textContent = text || "";
    show(composerError, Boolean(text));
  }

  async function postJSON(url, body) {
    let response;
    try {
      response = await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken },
        body: JSON.stringify(body),
      });
    } catch (error) {
      throw new Error(i18n.network); // the browser's own text ("Failed to fetch") is not for users
    }
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.error || i18n.failed);
    return data;
  }

  function addToSidebar(conversation, title) {
    const today = document.querySelector('#conversation-list [data-group="today"]');
    const list = today.querySelector("ul");
    const item = clone("sidebar-item-template");
    item.dataset.conversationId = conversation.id;
    const name = item.querySelector("[data-title]");
    const link = name.closest("a");
    link.href = conversation.url;
    name.textContent = title;
    link.setAttribute("aria-current", "page");
    item.querySelector("[data-rename]").action = `/conversations/${conversation.id}/rename`;
    item.querySelector("[data-delete]").action = `/conversations/${conversation.id}/delete`;
    item.querySelector("[data-pin]").action = `/conversations/${conversation.id}/pin`;
    item.querySelector("[data-share]").href = `/conversations/${conversation.id}/shares`;
    const input = item.querySelector("input[name=title]");
    input.id = `title-${conversation.id}`;
    input.value = title;
    item.querySelector("label[for]").htmlFor = input.id;
    list.prepend(item);
    show(today, true);
  }

  // A new chat's conversation, created for its first message. The page takes it on (address,
  // sidebar, forms) only once that message is accepted: refused, the server deletes it.
  async function createConversation() {
    const conversation = await postJSON("/conversations", {
      ...settingsValues(),
      model: modelSelect ? modelSelect.value : "",
      think: thinkForm.dataset.think, // empty unless the user chose: the model's default then
    });
    chat.dataset.conversationId = conversation.id;
    return conversation;
  }

  function conversationStarted(conversation, response) {
    history.replaceState(null, "", conversation.url);
    if (modelForm) modelForm.action = `/conversations/${conversation.id}/model`;
    thinkForm.action = `/conversations/${conversation.id}/thinking`;
    settingsForm.action = `/conversations/${conversation.id}/settings`;
    // A preset is a starting point: once the conversation exists, its model is changed above.
    const presetRow = document.querySelector("[data-preset-row]");
    if (presetRow) presetRow.remove();
    closeSettings(); // what it holds is the conversation's now; the thread gets the room
    const exportMenu = document.querySelector("[data-export-menu]");
    exportMenu.querySelectorAll("[data-export]").forEach((link) => {
      link.href = `/conversations/${conversation.id}/export.${link.dataset.export}`;
    });
    exportMenu.querySelector("[data-share-link]").href = `/conversations/${conversation.id}/shares`;
    show(exportMenu, true);
    // The title the server made of the first message (its words, without their Markdown).
    const title = decodeURIComponent(response.headers.get("X-Conversation-Title") || "") || i18n.new;
    document.querySelector("[data-conversation-title]").textContent = title;
    addToSidebar(conversation, title);
  }

  function setStatus(answer, text) {
    const status = answer.querySelector("[data-status]");
    status.textContent = text || "";
    show(status, Boolean(text));
  }

  // A reasoning model's thinking: folded away from the answer, open to whoever wants to read it.
  function appendThinking(answer, text) {
    const block = answer.querySelector("[data-thinking-block]");
    if (block.classList.contains("hidden")) {
      show(block, true);
      answer.querySelector("[data-thinking-summary]").textContent = i18n.thinking_now;
      answer.dataset.thinkingSince = String(performance.now());
    }
    answer.querySelector("[data-thinking]").append(text);
  }

  function thinkingOver(answer, seconds) {
    if (!answer.dataset.thinkingSince) return;
    if (seconds === undefined) seconds = (performance.now() - Number(answer.dataset.thinkingSince)) / 1000;
    answer.querySelector("[data-thinking-summary]").textContent = format(i18n.thought, { seconds: Numbers.decimal(seconds, 1) });
  }

  function finishAnswer(answer, state, stats) {
    answer.dataset.state = state;
    answer.querySelector("[data-state-label]").textContent = state === "complete" ? "" : i18n[state] || state;
    if (stats && stats.first_answer_seconds > stats.first_token_seconds) {
      thinkingOver(answer, stats.first_answer_seconds - stats.first_token_seconds);
    }
    if (stats && stats.tokens_per_second) {
      let speed = format(i18n.speed, {
        speed: Numbers.decimal(stats.tokens_per_second, 1),
        seconds: Numbers.decimal(stats.first_token_seconds, 2),
      });
      if (stats.thinking_tokens && stats.first_answer_seconds) {
        speed += ` · ${format(i18n.answer_after, { seconds: Numbers.decimal(stats.first_answer_seconds, 1) })}`;
      }
      answer.querySelector("[data-speed]").textContent = speed;
    }
  }

  // Ask for an answer, then follow it into the thread.
  //   url, body: the request (a new message, an edited question, a regenerated answer);
  //   question: the question's text to show above the answer, or null (regenerate);
  //   replacing: the message whose new version this is; it and what follows it leave the
  //   thread (they stay reachable through the version arrows), or come back if refused.
  //   accepted(response): called once the server took the request (before the answer is written).
  async function ask({ url, body, question = null, replacing = null, accepted = null }) {
    showComposerError("");
    setBusy(true);
    current = { messageId: null, stopRequested: false };
    await savingThinking;
    let response;
    try {
      response = await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "text/event-stream", "X-CSRFToken": csrfToken },
        body: JSON.stringify(body),
      });
    } catch (error) {
      current = null;
      setBusy(false);
      showComposerError(i18n.network);
      return false;
    }
    if (!response.ok) {
      const data = await response.json().catch(() => ({}));
      current = null;
      setBusy(false);
      showComposerError(data.error || i18n.failed);
      return false;
    }
    if (accepted) accepted(response);
    // The greeting and the page's notices ("Bienvenue") were for the empty thread.
    messages.querySelectorAll("[data-empty], [data-flash]").forEach((node) => node.remove());
    const earlier = replacing ? versionsOf(replacing) : [];
    if (replacing) {
      let node = replacing;
      while (node) {
        const next = node.nextElementSibling;
        if (node.matches("article")) node.remove();
        node = next;
      }
    }
    const answer = clone("answer-template");
    answer.dataset.messageId = response.headers.get("X-Message-Id");
    answer.id = `m-${answer.dataset.messageId}`;
    answer.dataset.state = "generating";
    // The name users read (the option's), as the page shows it under stored answers.
    const picked = modelSelect && modelSelect.selectedOptions[0];
    answer.querySelector("[data-model]").textContent = picked ? picked.textContent : "";
    if (question !== null) {
      const asked = clone("question-template");
      asked.dataset.messageId = response.headers.get("X-Question-Id");
      asked.id = `m-${asked.dataset.messageId}`;
      asked.querySelector("[data-content]").textContent = question;
      sources.set(asked.dataset.messageId, question);
      setVersions(asked, [...earlier, Number(asked.dataset.messageId)]);
      setVersions(answer, [Number(answer.dataset.messageId)]);
      messages.append(asked);
      if (body.document_ids && window.Attachments) Attachments.sent(asked);
    } else {
      setVersions(answer, [...earlier, Number(answer.dataset.messageId)]);
    }
    messages.append(answer);
    scrollToEnd(true);
    markAnswering(chat.dataset.conversationId, true);
    watchSidebar();
    await follow(answer, response);
    return true;
  }

  // Follow one answer until its end: the events of `response`, then, should the connection
  // break (a network blip, a proxy), those after the last one received, asked for again. The
  // answer is the server's: it goes on meanwhile, and nothing is lost or shown twice.
  async function follow(answer, response = null) {
    current = current || { messageId: null, stopRequested: false };
    current.messageId = answer.dataset.messageId;
    setBusy(true);
    // Stop pressed before the server answered: send it now that the answer has an id.
    if (current.stopRequested) sendStop(answer);
    const markdown = answer.querySelector("[data-markdown]");
    const view = new Markdown.StreamingView(markdown);
    // Screen readers read the answer once it is written, not at every frame of it.
    markdown.setAttribute("aria-busy", "true");
    // phase, phaseLabel, phaseSince: the waiting phase shown (queued, loading, reading the
    // prompt) and since when; lastText: when text or thinking last came; paused: reconnecting.
    const state = { lastId: 0, ended: false, answered: false, written: "", phaseLabel: "", lastText: 0, paused: false };
    const ticking = window.setInterval(() => tick(answer, state), 1000);
    let failures = 0;
    while (!state.ended) {
      if (!response) {
        response = await subscribe(answer, state.lastId);
        if (response === "gone") {
          // No longer in the server's memory: what is stored is the whole answer (unless its
          // job is only just starting: then asked again in a moment).
          if (await settleFromServer(answer)) {
            state.ended = true;
            break;
          }
          response = null;
        } else if (response && response.refused) {
          // Signed out, or the conversation deleted in another tab: nothing to wait for.
          showComposerError(response.refused);
          break;
        }
      }
      if (response) {
        const before = state.lastId;
        const ending = await read(answer, response, view, state);
        if (ending === "closed") break;
        if (state.lastId > before) failures = 0;
      }
      response = null;
      if (state.ended) break;
      failures += 1;
      if (failures > RECONNECT_PAUSES.length) {
        setStatus(answer, "");
        showComposerError(i18n.lost);
        break;
      }
      setStatus(answer, i18n.reconnecting);
      state.paused = true;
      await new Promise((resolve) => window.setTimeout(resolve, RECONNECT_PAUSES[failures - 1]));
      state.paused = false;
    }
    window.clearInterval(ticking);
    view.end();
    if (window.Citations) Citations.link(answer);
    markdown.setAttribute("aria-busy", "false");
    sources.set(answer.dataset.messageId, state.written || sources.get(answer.dataset.messageId) || "");
    if (state.ended) {
      setStatus(answer, "");
      settleEnding(answer);
      show(answer.querySelector("[data-actions]"), true);
      markAnswering(chat.dataset.conversationId, false);
    }
    current = null;
    setBusy(false);
    scrollToEnd(false);
  }

  const RECONNECT_PAUSES = [500, 1000, 2000, 4000, 8000, 15000];
  // Long before the engine's stall limit (a minute), the reader is told that nothing comes.
  const SILENCE_SECONDS = 15;
  const TEXT_PHASES = ["thinking", "answering"];

  // Every second while an answer is followed: the seconds spent in the waiting phase shown,
  // or, once text came, how long none has.
  function tick(answer, state) {
    if ((current && current.stopRequested) || state.paused || state.ended) return;
    const now = performance.now();
    if (state.phaseLabel) {
      const seconds = Math.floor((now - state.phaseSince) / 1000);
      if (seconds >= 1) setStatus(answer, format(i18n.waited, { status: state.phaseLabel, seconds }));
    } else if (state.lastText) {
      const seconds = Math.floor((now - state.lastText) / 1000);
      if (seconds >= SILENCE_SECONDS) setStatus(answer, format(i18n.silent, { seconds }));
    }
  }

  function noteText(state) {
    state.phaseLabel = "";
    state.lastText = performance.now();
  }

  // How an answer ended, where its text alone would not say: inside its thinking (the fold
  // opened, titled so), or stopped before any text (said, with a way to ask again); and
  // whether it can be rated (only a written answer that did not fail).
  function settleEnding(answer) {
    const written = answer.querySelector("[data-markdown]").textContent.trim() !== "";
    const thought = answer.querySelector("[data-thinking]").textContent.trim() !== "";
    const unfinished = thought && !written;
    if (unfinished) {
      answer.querySelector("[data-thinking-summary]").textContent = i18n.unfinished_thinking;
      answer.querySelector("[data-thinking-block]").open = true;
    }
    show(answer.querySelector("[data-unfinished]"), unfinished);
    show(answer.querySelector("[data-stopped-empty]"), answer.dataset.state === "stopped" && !written && !thought);
    show(answer.querySelector("[data-rating]"), written && answer.dataset.state !== "error");
  }

  // Ask the server for the answer's events after `lastId`: the response, "gone" when the
  // answer is no longer in its memory (410), or null when the server cannot be reached.
  async function subscribe(answer, lastId) {
    try {
      const response = await fetch(`/messages/${answer.dataset.messageId}/events?after=${lastId}`, {
        headers: { Accept: "text/event-stream", "Last-Event-ID": String(lastId) },
      });
      if (response.status === 410) return "gone";
      if ([401, 403, 404].includes(response.status)) {
        const data = await response.json().catch(() => ({}));
        return { refused: data.error || i18n.failed };
      }
      return response.ok ? response : null;
    } catch (error) {
      return null;
    }
  }

  // Read one response's events into the answer: "ended" (done or error), "closed" (another page
  // of this person follows it now), or "broken" (the connection went before the end).
  async function read(answer, response, view, state) {
    try {
      for await (const { event, data, id } of AnswerEvents.read(response.body)) {
        if (id) state.lastId = id;
        if (event === "token") {
          if (!state.answered) thinkingOver(answer);
          state.answered = true;
          noteText(state);
          state.written += data.text;
          view.append(data.text);
          setStatus(answer, "");
          scrollToEnd(false);
        } else if (event === "thinking") {
          appendThinking(answer, data.text);
          noteText(state);
          setStatus(answer, "");
          scrollToEnd(false);
        } else if (event === "status") {
          const label = data.phase === "queued" ? format(i18n.queued, { position: data.position })
            : data.phase === "documents" ? format(i18n.documents, { ready: data.ready, total: data.total })
            : i18n[data.phase];
          if (TEXT_PHASES.includes(data.phase)) {
            noteText(state);
          } else {
            if (data.phase !== state.phase) state.phaseSince = performance.now();
            state.phaseLabel = label;
          }
          state.phase = data.phase;
          if (!current || !current.stopRequested) setStatus(answer, label);
        } else if (event === "sources") {
          if (window.Citations) Citations.show(answer, data);
        } else if (event === "notice") {
          const notice = answer.querySelector("[data-notice]");
          notice.textContent = data.message;
          show(notice, true);
        } else if (event === "done") {
          state.ended = true;
          finishAnswer(answer, data.state, data.stats);
          return "ended";
        } else if (event === "error" && data.cut) {
          // This page's session ended (signed out elsewhere): the answer goes on, unseen here.
          setStatus(answer, "");
          showComposerError(data.message);
          return "closed";
        } else if (event === "error") {
          state.ended = true;
          const box = answer.querySelector("[data-error]");
          box.textContent = data.message;
          show(box, true);
          finishAnswer(answer, data.state || "error");
          return "ended";
        } else if (event === "closed") {
          setStatus(answer, "");
          offerToFollow(answer, data.message);
          return "closed";
        }
      }
    } catch (error) {
      // The connection broke: the caller asks for the rest.
    }
    return "broken";
  }

  // Another page of this person took over the answer's stream: following it here again is one click.
  function offerToFollow(answer, message) {
    const note = clone("follow-template");
    note.querySelector("[data-follow-message]").textContent = message;
    note.querySelector("button").addEventListener("click", () => {
      note.remove();
      resumeAnswer(answer);
    });
    answer.append(note);
  }

  // The answer as stored (once the server no longer keeps its events): text, thinking, ending.
  // False when it is stored as still being written: its job is only just starting.
  async function settleFromServer(answer) {
    try {
      const response = await fetch(`/conversations/${chat.dataset.conversationId}/messages`, {
        headers: { Accept: "application/json" },
      });
      const data = await response.json();
      const stored = data.messages.find((m) => String(m.id) === answer.dataset.messageId);
      if (!stored) return true;
      if (stored.state === "generating") return false;
      answer.querySelector("[data-markdown]").replaceChildren();
      const view = new Markdown.StreamingView(answer.querySelector("[data-markdown]"));
      view.append(stored.content);
      view.end();
      if (window.Citations) {
        Citations.show(answer, stored.sources);
        Citations.link(answer);
      }
      sources.set(answer.dataset.messageId, stored.content);
      if (stored.thinking) {
        answer.querySelector("[data-thinking]").textContent = stored.thinking;
        show(answer.querySelector("[data-thinking-block]"), true);
      }
      if (stored.error) {
        answer.querySelector("[data-error]").textContent = stored.error;
        show(answer.querySelector("[data-error]"), true);
      }
      finishAnswer(answer, stored.state, stored.stats);
    } catch (error) {
      showComposerError(i18n.lost);
    }
    return true;
  }

  // An answer being written when the page opened (a reload, another tab, coming back): its
  // events from the first, in place of the part stored so far.
  function resumeAnswer(answer) {
    answer.querySelector("[data-markdown]").replaceChildren();
    answer.querySelector("[data-thinking]").replaceChildren();
    show(answer.querySelector("[data-thinking-block]"), false);
    delete answer.dataset.thinkingSince;
    show(answer.querySelector("[data-error]"), false);
    ["[data-unfinished]", "[data-stopped-empty]"].forEach((s) => show(answer.querySelector(s), false));
    answer.dataset.state = "generating";
    answer.querySelector("[data-state-label]").textContent = "";
    return follow(answer);
  }

  // The sidebar marks the conversations with an answer being written (this page's and others':
  // another tab, a phone), as GET /conversations says, asked again while any is marked.
  function markAnswering(conversationId, answering) {
    const item = document.querySelector(`#conversation-list [data-conversation-id="${conversationId}"]`);
    if (item) show(item.querySelector("[data-answering]"), answering);
  }

  let watching = null;
  function watchSidebar() {
    if (watching) return;
    watching = window.setInterval(async () => {
      try {
        const response = await fetch("/conversations", { headers: { Accept: "application/json" } });
        const data = await response.json();
        let any = false;
        for (const c of data.conversations) {
          markAnswering(c.id, c.answering);
          any = any || c.answering;
        }
        if (!any && !current) {
          window.clearInterval(watching);
          watching = null;
        }
      } catch (error) {
        // Asked again at the next beat.
      }
    }, 4000);
  }

  async function send(text) {
    // Files attached: sent once uploaded (their indexing may go on: the answer waits for it).
    const attached = window.Attachments ? await Attachments.forMessage() : { ids: [] };
    if (attached.refused) {
      showComposerError(attached.refused);
      return false;
    }
    let conversation = null;
    if (!chat.dataset.conversationId) {
      try {
        conversation = await createConversation();
      } catch (error) {
        showComposerError(error.message);
        return false;
      }
    }
    const sent = await ask({
      url: `/conversations/${chat.dataset.conversationId}/messages`,
      body: attached.ids.length ? { content: text, document_ids: attached.ids } : { content: text },
      question: text,
      accepted: conversation && ((response) => conversationStarted(conversation, response)),
    });
    // Its first message refused, the new conversation is gone on the server: the next try
    // starts another.
    if (!sent && conversation) chat.dataset.conversationId = "";
    return sent;
  }

  // The versions of a turn (regenerated answers, edited questions) and the arrows between them.
  function versionsOf(article) {
    return JSON.parse(article.querySelector("[data-versions]").dataset.versions || "[]");
  }

  function setVersions(article, ids) {
    const nav = article.querySelector("[data-versions]");
    const id = Number(article.dataset.messageId);
    const position = ids.indexOf(id);
    nav.dataset.versions = JSON.stringify(ids);
    nav.querySelector("[data-version-label]").textContent = format(i18n.version, {
      position: position + 1,
      count: ids.length,
    });
    nav.querySelectorAll("[data-version-step]").forEach((form) => {
      const target = ids[position + Number(form.dataset.versionStep)];
      form.action = target ? `/messages/${target}/select` : "";
      form.querySelector("button").disabled = !target || Boolean(current);
    });
    show(nav, ids.length > 1);
  }

  // What the copy buttons copy: the text as written (the Markdown source for answers).
  const sources = new Map();
  messages.querySelectorAll("article[data-message-id]").forEach((article) => {
    const content = article.querySelector("[data-content], [data-markdown]");
    sources.set(article.dataset.messageId, content.textContent);
  });
  Markdown.renderStatic(messages);
  scrollToEnd(!window.location.hash);

  function announce(text) {
    const region = document.getElementById("announcer");
    region.textContent = "";
    window.setTimeout(() => { region.textContent = text; }, 50);
  }

  async function copyMessage(article, button) {
    const copied = await Copying.copy(sources.get(article.dataset.messageId) || "");
    const words = JSON.parse(document.querySelector('meta[name="ui-strings"]').content);
    const label = copied ? words.copied : words.copy_failed;
    const before = button.title;
    button.title = label;
    button.dataset.copied = String(copied);
    announce(label);
    // Seen next to the button: the clipboard itself shows nothing.
    const shown = article.querySelector("[data-copied-label]");
    shown.textContent = label;
    ["text-emerald-700", "dark:text-emerald-400"].forEach((c) => shown.classList.toggle(c, copied));
    ["text-red-600", "dark:text-red-400"].forEach((c) => shown.classList.toggle(c, !copied));
    show(shown, true);
    window.clearTimeout(shown.hiding);
    shown.hiding = window.setTimeout(() => show(shown, false), 2000);
    window.setTimeout(() => { button.title = before; delete button.dataset.copied; }, 2000);
  }

  function startEditing(article) {
    const content = article.querySelector("[data-content]");
    const form = clone("edit-template");
    const box = form.querySelector("textarea");
    box.id = `edit-${Copying.uuid()}`;
    form.querySelector("[data-edit-label]").htmlFor = box.id;
    box.value = sources.get(article.dataset.messageId) || content.textContent;
    show(content, false);
    show(article.querySelector("[data-actions]"), false);
    article.prepend(form);
    CharLimit.attach(box); // counted, and refused over the limit, as the composer is
    const cancel = () => {
      form.remove();
      show(content, true);
      show(article.querySelector("[data-actions]"), true);
      article.querySelector('[data-action="edit"]').focus();
    };
    form.querySelector("[data-edit-cancel]").addEventListener("click", cancel);
    box.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.stopPropagation();
        cancel();
      } else if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const text = box.value.trim();
      if (current) showComposerError(i18n.busy);
      if (!text || current) return;
      await ask({ url: `/messages/${article.dataset.messageId}/edit`, body: { content: text }, question: text, replacing: article });
    });
    box.focus();
    box.setSelectionRange(box.value.length, box.value.length);
  }

  async function rate(article, button) {
    const value = button.getAttribute("aria-pressed") === "true" ? "" : button.dataset.action;
    try {
      await postJSON(`/messages/${article.dataset.messageId}/feedback`, { value });
    } catch (error) {
      showComposerError(error.message);
      return;
    }
    article.querySelectorAll('[data-action="up"], [data-action="down"]').forEach((other) => {
      other.setAttribute("aria-pressed", String(other.dataset.action === value));
    });
  }

  messages.addEventListener("click", (event) => {
    const button = event.target.closest("[data-action]");
    if (!button) return;
    const article = button.closest("article[data-message-id]");
    const action = button.dataset.action;
    if (action === "copy") copyMessage(article, button);
    else if (current) showComposerError(i18n.busy);
    else if (action === "edit") startEditing(article);
    else if (action === "regenerate") ask({ url: `/messages/${article.dataset.messageId}/regenerate`, body: {}, replacing: article });
    else if (action === "up" || action === "down") rate(article, button);
  });

  function stop() {
    if (!current || current.stopRequested) return;
    current.stopRequested = true;
    stopButton.disabled = true;
    if (current.messageId) {
      sendStop(messages.querySelector(`[data-message-id="${current.messageId}"]`));
    }
  }

  async function sendStop(answer) {
    if (answer) setStatus(answer, i18n.stopping);
    try {
      await postJSON(`/messages/${current.messageId}/stop`, {});
    } catch (error) {
      showComposerError(error.message);
    }
  }

  composer.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = prompt.value.trim();
    if (!text || current) return; // over the limit, char-limit.js refused it before this
    const key = draftKey();
    prompt.value = "";
    autosize();
    CharLimit.update(prompt);
    saveDraft(key); // sent: a reload while it streams must not offer it again
    const accepted = await send(text);
    // Nothing the user typed is lost: a refused message goes back into the box.
    if (!accepted && !prompt.value) {
      prompt.value = text;
      autosize();
      CharLimit.update(prompt);
    }
    saveDraft();
    prompt.focus();
  });

  // A message being typed survives a reload or a closed tab (kept in this browser only, per
  // user; signing out forgets it, see app.js).
  const draftKey = (id = chat.dataset.conversationId) => `causerie:draft:${chat.dataset.userId}:${id || "new"}`;
  function saveDraft(key = draftKey()) {
    try {
      if (prompt.value) window.localStorage.setItem(key, prompt.value);
      else window.localStorage.removeItem(key);
    } catch (error) {
      // Storage refused (private mode, full): the draft just isn't kept.
    }
  }
  try {
    const draft = window.localStorage.getItem(draftKey());
    if (draft && !prompt.value) prompt.value = draft;
  } catch (error) {
    // as above
  }
  prompt.addEventListener("input", () => saveDraft());

  prompt.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      composer.requestSubmit();
    }
  });
  document.addEventListener("keydown", (event) => {
    // Esc stops the answer, unless it already closed a menu or cleared a field elsewhere.
    const elsewhere = event.target.matches && event.target.matches("input, textarea, select") && event.target !== prompt;
    if (event.key === "Escape" && current && !event.defaultPrevented && !elsewhere) stop();
    // A new chat: Ctrl+Shift+O (Cmd+Shift+O on a Mac), as in the chat apps people know. An
    // answer being written goes on without this page.
    if ((event.ctrlKey || event.metaKey) && event.shiftKey && event.key.toLowerCase() === "o") {
      event.preventDefault();
      window.location.assign("/");
    }
  });
  stopButton.addEventListener("click", stop);

  function autosize() {
    prompt.style.height = "auto";
    prompt.style.height = `${Math.min(prompt.scrollHeight, 240)}px`;
  }
  prompt.addEventListener("input", autosize);

  // The message's length is counted, and a message over the limit refused, by char-limit.js.
  CharLimit.update(prompt); // a long draft kept from before

  // A new chat names the picked model and what the admin says of it.
  function describePickedModel() {
    const about = document.querySelector("[data-model-about]");
    const option = modelSelect && modelSelect.selectedOptions[0];
    if (!about || !option) return;
    about.querySelector("[data-model-about-name]").textContent = option.textContent;
    const description = about.querySelector("[data-model-about-description]");
    description.textContent = option.dataset.description ? ` · ${option.dataset.description}` : "";
    description.classList.toggle("hidden", !option.dataset.description);
  }

  // The thinking switch shows for reasoning models only; unset, it follows the admin's default.
  function syncThinking() {
    const option = modelSelect && modelSelect.selectedOptions[0];
    const capable = Boolean(option && option.dataset.thinking);
    thinkForm.classList.toggle("hidden", !capable);
    thinkForm.classList.toggle("flex", capable);
    const chosen = thinkForm.dataset.think;
    thinkBox.checked = chosen ? chosen === "on" : Boolean(option) && option.dataset.thinkDefault !== "0";
  }
  syncThinking();
  describePickedModel(); // a picker the browser restored on going back
  thinkBox.addEventListener("change", () => {
    thinkForm.dataset.think = thinkBox.checked ? "on" : "off";
    if (!chat.dataset.conversationId) return; // a new chat takes it when it starts
    savingThinking = postJSON(thinkForm.action, { think: thinkForm.dataset.think })
      .then(() => showComposerError(""))
      .catch((error) => showComposerError(error.message));
  });

  // The conversation's own settings: system prompt and sampling, shown under the header.
  const settingsToggle = document.querySelector("[data-settings-toggle]");
  const settingsForm = document.querySelector("[data-settings-form]");
  const settingsStatus = settingsForm.querySelector("[data-settings-status]");
  const presetSelect = document.querySelector("[data-preset]");
  settingsToggle.addEventListener("click", () => {
    const open = settingsForm.classList.contains("hidden");
    show(settingsForm, open);
    settingsToggle.setAttribute("aria-expanded", String(open));
    if (open) settingsForm.querySelector("textarea, input:not([type=hidden])").focus();
  });
  function closeSettings() {
    show(settingsForm, false);
    settingsToggle.setAttribute("aria-expanded", "false");
  }

  function settingsValues() {
    const values = {};
    new FormData(settingsForm).forEach((value, name) => {
      // The knowledge bases chosen: a list of ids (an empty hidden value comes first: none).
      if (name === "collection_ids") values[name] = [...(values[name] || []), ...(value ? [Number(value)] : [])];
      else if (name !== "csrf_token") values[name] = value;
    });
    return values;
  }

  settingsForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!chat.dataset.conversationId) {
      settingsStatus.textContent = i18n.saved_later; // a new chat takes them when it starts
      settingsStatus.className = "text-sm text-slate-600 dark:text-slate-400";
      return;
    }
    try {
      await postJSON(settingsForm.action, settingsValues());
      settingsStatus.textContent = i18n.saved;
      settingsStatus.className = "text-sm text-emerald-700 dark:text-emerald-400";
    } catch (error) {
      settingsStatus.textContent = error.message;
      settingsStatus.className = "text-sm text-red-600 dark:text-red-400";
    }
  });

  // A preset fills in the system prompt and, when it names one still offered, the model.
  if (presetSelect) {
    presetSelect.addEventListener("change", () => {
      const option = presetSelect.selectedOptions[0];
      const systemPrompt = settingsForm.querySelector("[name=system_prompt]");
      systemPrompt.value = option.dataset.systemPrompt;
      CharLimit.update(systemPrompt);
      const model = option.dataset.model;
      if (model && modelSelect && [...modelSelect.options].some((o) => o.value === model && !o.disabled)) {
        modelSelect.value = model;
        syncThinking();
        describePickedModel();
      }
    });
  }

  if (modelSelect && modelForm) {
    modelSelect.addEventListener("change", async () => {
      syncThinking();
      describePickedModel();
      if (!chat.dataset.conversationId) return; // a new chat takes the model when it starts
      try {
        await postJSON(modelForm.action, { model: modelSelect.value });
        showComposerError("");
      } catch (error) {
        showComposerError(error.message);
      }
    });
  }
  // An answer still being written when the page opened is followed from its first event.
  const writing = messages.querySelector('article[data-role="assistant"][data-state="generating"]');
  if (writing) resumeAnswer(writing);
  if (document.querySelector("#conversation-list [data-answering]:not(.hidden)")) watchSidebar();
})();
