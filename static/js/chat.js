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

  Markdown.renderStatic(messages);
  scrollToEnd(true);

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
    const list = document.getElementById("conversation-list");
    const item = clone("sidebar-item-template");
    item.dataset.conversationId = conversation.id;
    const link = item.querySelector("[data-title]");
    link.href = conversation.url;
    link.textContent = title;
    link.setAttribute("aria-current", "page");
    item.querySelector("[data-rename]").action = `/conversations/${conversation.id}/rename`;
    item.querySelector("[data-delete]").action = `/conversations/${conversation.id}/delete`;
    const input = item.querySelector("input[name=title]");
    input.id = `title-${conversation.id}`;
    input.value = title;
    item.querySelector("label[for]").htmlFor = input.id;
    list.prepend(item);
  }

  async function ensureConversation(firstMessage) {
    if (chat.dataset.conversationId) return chat.dataset.conversationId;
    const conversation = await postJSON("/conversations", {
      model: modelSelect ? modelSelect.value : "",
      think: thinkForm.dataset.think, // empty unless the user chose: the model's default then
    });
    chat.dataset.conversationId = conversation.id;
    history.replaceState(null, "", conversation.url);
    if (modelForm) modelForm.action = `/conversations/${conversation.id}/model`;
    thinkForm.action = `/conversations/${conversation.id}/thinking`;
    const title = firstMessage.split(/\s+/).join(" ").slice(0, 60);
    document.querySelector("[data-conversation-title]").textContent = title;
    addToSidebar(conversation, title);
    return conversation.id;
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
    answer.querySelector("[data-thinking-summary]").textContent = format(i18n.thought, { seconds: seconds.toFixed(1) });
  }

  function finishAnswer(answer, state, stats) {
    answer.dataset.state = state;
    answer.querySelector("[data-state-label]").textContent = state === "complete" ? "" : i18n[state] || state;
    if (stats && stats.first_answer_seconds > stats.first_token_seconds) {
      thinkingOver(answer, stats.first_answer_seconds - stats.first_token_seconds);
    }
    if (stats && stats.tokens_per_second) {
      let speed = format(i18n.speed, {
        speed: stats.tokens_per_second.toFixed(1),
        seconds: stats.first_token_seconds.toFixed(2),
      });
      if (stats.thinking_tokens && stats.first_answer_seconds) {
        speed += ` · ${format(i18n.answer_after, { seconds: stats.first_answer_seconds.toFixed(1) })}`;
      }
      answer.querySelector("[data-speed]").textContent = speed;
    }
  }

  async function send(text) {
    showComposerError("");
    const empty = messages.querySelector("[data-empty]");
    let conversationId;
    try {
      conversationId = await ensureConversation(text);
    } catch (error) {
      showComposerError(error.message);
      return false;
    }
    setBusy(true);
    current = { messageId: null, stopRequested: false };
    await savingThinking;
    let response;
    try {
      response = await fetch(`/conversations/${conversationId}/messages`, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "text/event-stream", "X-CSRFToken": csrfToken },
        body: JSON.stringify({ content: text }),
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
    if (empty) empty.remove();
    const question = clone("question-template");
    question.querySelector("[data-content]").textContent = text;
    const answer = clone("answer-template");
    answer.dataset.messageId = response.headers.get("X-Message-Id");
    answer.dataset.state = "generating";
    answer.querySelector("[data-model]").textContent = modelSelect ? modelSelect.value : "";
    messages.append(question, answer);
    scrollToEnd(true);
    current.messageId = answer.dataset.messageId;
    // Stop pressed before the server answered: send it now that the answer has an id.
    if (current.stopRequested) sendStop(answer);
    const view = new Markdown.StreamingView(answer.querySelector("[data-markdown]"));
    let ended = false;
    let answered = false;
    try {
      for await (const { event, data } of AnswerEvents.read(response.body)) {
        if (event === "token") {
          if (!answered) thinkingOver(answer);
          answered = true;
          view.append(data.text);
          scrollToEnd(false);
        } else if (event === "thinking") {
          appendThinking(answer, data.text);
          scrollToEnd(false);
        } else if (event === "status") {
          const label = data.phase === "queued" ? format(i18n.queued, { position: data.position }) : i18n[data.phase];
          if (!current.stopRequested) setStatus(answer, label);
        } else if (event === "notice") {
          const notice = answer.querySelector("[data-notice]");
          notice.textContent = data.message;
          show(notice, true);
        } else if (event === "done") {
          ended = true;
          finishAnswer(answer, data.state, data.stats);
        } else if (event === "error") {
          ended = true;
          const box = answer.querySelector("[data-error]");
          box.textContent = data.message;
          show(box, true);
          finishAnswer(answer, "error");
        }
      }
    } catch (error) {
      // The connection broke: the server keeps what was written; say so plainly.
    }
    view.end();
    setStatus(answer, "");
    if (!ended) {
      finishAnswer(answer, "disconnected");
      showComposerError(i18n.network);
    }
    current = null;
    setBusy(false);
    scrollToEnd(false);
    return true;
  }

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
    if (!text || current) return;
    prompt.value = "";
    autosize();
    const accepted = await send(text);
    // Nothing the user typed is lost: a refused message goes back into the box.
    if (!accepted && !prompt.value) {
      prompt.value = text;
      autosize();
    }
    prompt.focus();
  });

  prompt.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      composer.requestSubmit();
    }
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && current) stop();
  });
  stopButton.addEventListener("click", stop);

  function autosize() {
    prompt.style.height = "auto";
    prompt.style.height = `${Math.min(prompt.scrollHeight, 240)}px`;
  }
  prompt.addEventListener("input", autosize);

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
  thinkBox.addEventListener("change", () => {
    thinkForm.dataset.think = thinkBox.checked ? "on" : "off";
    if (!chat.dataset.conversationId) return; // a new chat takes it when it starts
    savingThinking = postJSON(thinkForm.action, { think: thinkForm.dataset.think })
      .then(() => showComposerError(""))
      .catch((error) => showComposerError(error.message));
  });

  if (modelSelect && modelForm) {
    modelSelect.addEventListener("change", async () => {
      syncThinking();
      if (!chat.dataset.conversationId) return; // a new chat takes the model when it starts
      try {
        await postJSON(modelForm.action, { model: modelSelect.value });
        showComposerError("");
      } catch (error) {
        showComposerError(error.message);
      }
    });
  }
})();
