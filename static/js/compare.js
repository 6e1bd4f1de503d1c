// The compare page: one prompt sent to two to four models, the answers read side by side.
// The columns are asked in their order, each once the one before it is in the server's line,
// so the first column is answered first; the scheduler decides whether they are written together.
// The HTTP interface it uses is documented in the README.
"use strict";

(() => {
  const root = document.getElementById("compare");
  if (!root) return;
  const i18n = JSON.parse(root.dataset.i18n);
  const csrfToken = document.querySelector('meta[name="csrf-token"]').content;
  const form = document.getElementById("compare-form");
  const prompt = document.getElementById("prompt");
  const pickers = ["a", "b", "c", "d"].map((name) => document.getElementById(`model-${name}`));
  const pickerBoxes = pickers.map((picker) => picker.closest("[data-picker]"));
  const columns = pickers.map((picker, i) => root.querySelector(`[data-column="${"abcd"[i]}"]`));
  const addButton = document.getElementById("add-model");
  const planLine = document.getElementById("plan");
  const sendButton = document.getElementById("send");
  const stopButton = document.getElementById("stop");
  const formError = document.getElementById("compare-error");
  let runs = null; // while answers are written: one { key, stopRequested, ended } per column

  function format(template, values) {
    return template.replace(/\{(\w+)\}/g, (_, key) => values[key]);
  }

  function show(element, visible) {
    element.classList.toggle("hidden", !visible);
  }

  function showError(text) {
    formError.textContent = text || "";
    show(formError, Boolean(text));
  }

  // A picker and its column: shown (as flex boxes) or hidden together.
  function showFlex(element, visible) {
    element.classList.toggle("hidden", !visible);
    element.classList.toggle("flex", visible);
  }

  function inUse() {
    return pickers.map((picker, i) => i).filter((i) => !pickerBoxes[i].classList.contains("hidden"));
  }

  function modelsChanged() {
    const count = inUse().length;
    sendButton.textContent = count === 2 ? i18n.sendBoth : format(i18n.sendAll, { count });
    addButton.classList.toggle("hidden", count >= pickers.length);
    updatePlan();
  }

  function setBusy(busy) {
    addButton.disabled = busy;
    root.querySelectorAll("[data-remove-model]").forEach((button) => { button.disabled = busy; });
    show(sendButton, !busy);
    show(stopButton, busy);
    stopButton.disabled = false;
    pickers.forEach((picker) => { picker.disabled = busy; });
  }

  // -- what each column shows ---------------------------------------------------------------
  function setStatus(column, text) {
    const status = column.querySelector("[data-status]");
    status.textContent = text || "";
    show(status, Boolean(text));
  }

  function showColumnError(column, text) {
    const box = column.querySelector("[data-error]");
    box.textContent = text || "";
    show(box, Boolean(text));
  }

  // A column names its model as users know it, with what the admin says of it.
  function nameColumn(column, picker) {
    const option = picker.selectedOptions[0];
    column.querySelector("[data-model-name]").textContent = option.textContent;
    const description = column.querySelector("[data-model-description]");
    description.textContent = option.dataset.description || "";
    show(description, Boolean(option.dataset.description));
  }

  function reset(column, picker) {
    nameColumn(column, picker);
    column.dataset.state = "generating";
    delete column.dataset.thinkingSince;
    setStatus(column, "");
    showColumnError(column, "");
    markCut(column, "");
    show(column.querySelector("[data-thinking-block]"), false);
    column.querySelector("[data-thinking]").textContent = "";
    column.querySelector("[data-markdown]").replaceChildren();
    const timings = column.querySelector("[data-timings]");
    timings.classList.add("hidden");
    timings.classList.remove("grid");
  }

  // A reasoning model's thinking: folded away from the answer, open to whoever wants to read it.
  function appendThinking(column, text) {
    const block = column.querySelector("[data-thinking-block]");
    if (block.classList.contains("hidden")) {
      show(block, true);
      column.querySelector("[data-thinking-summary]").textContent = i18n.thinking;
      column.dataset.thinkingSince = String(performance.now());
    }
    column.querySelector("[data-thinking]").append(text);
  }

  function thinkingOver(column, seconds) {
    if (!column.dataset.thinkingSince) return;
    if (seconds === undefined) seconds = (performance.now() - Number(column.dataset.thinkingSince)) / 1000;
    column.querySelector("[data-thinking-summary]").textContent = format(i18n.thought, { seconds: Numbers.decimal(seconds, 1) });
  }

  function showTimings(column, stats) {
    const seconds = (value) => format(i18n.seconds, { seconds: Numbers.decimal(value || 0, 2) });
    const timings = column.querySelector("[data-timings]");
    timings.querySelector("[data-first-token]").textContent = seconds(stats.first_token_seconds);
    timings.querySelector("[data-speed]").textContent = format(i18n.speed, { speed: Numbers.decimal(stats.tokens_per_second || 0, 1) });
    timings.querySelector("[data-total]").textContent = seconds(stats.total_seconds);
    timings.querySelector("[data-tokens]").textContent = String(stats.completion_tokens || 0);
    timings.querySelector("[data-waited]").textContent = seconds(stats.queue_seconds);
    timings.classList.remove("hidden");
    timings.classList.add("grid");
  }

  // An answer that did not end by itself is marked so, in words: stopped, cut at the longest
  // answer allowed, failed, or its connection lost.
  function markCut(column, state, stats) {
    let cut = i18n[`cut_${state}`] === undefined ? "" : state;
    if (state === "complete" && stats && stats.finish_reason === "length") cut = "length";
    const marker = column.querySelector("[data-cut]");
    marker.textContent = cut ? i18n[`cut_${cut}`] : "";
    show(marker, Boolean(cut));
    column.dataset.cut = cut;
  }

  function finish(column, state, stats) {
    column.dataset.state = state;
    markCut(column, state, stats);
    setStatus(column, i18n[state] === undefined ? state : i18n[state]);
    if (stats && stats.first_answer_seconds > stats.first_token_seconds) {
      thinkingOver(column, stats.first_answer_seconds - stats.first_token_seconds);
    }
    if (stats && stats.completion_tokens) showTimings(column, stats); // stopped before it began: none
  }

  // -- one answer ---------------------------------------------------------------------------
  // `inLine` is called once the server has the request in its line (or refused it).
  async function answerIn(column, model, text, run, inLine) {
    let response;
    try {
      response = await fetch(root.dataset.answersUrl, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "text/event-stream", "X-CSRFToken": csrfToken },
        body: JSON.stringify({ model, prompt: text }),
      });
    } catch (error) {
      inLine();
      return refused(column, i18n.network); // the browser's own text ("Failed to fetch") is not for users
    }
    inLine();
    if (!response.ok) {
      const data = await response.json().catch(() => ({}));
      return refused(column, data.error || i18n.failed);
    }
    run.key = response.headers.get("X-Compare-Id");
    // Stop pressed before the server answered: send it now that the answer has a key.
    if (run.stopRequested) sendStop(run);
    const view = new Markdown.StreamingView(column.querySelector("[data-markdown]"));
    let answered = false;
    try {
      for await (const { event, data } of AnswerEvents.read(response.body)) {
        if (event === "token") {
          if (!answered) thinkingOver(column);
          answered = true;
          view.append(data.text);
        } else if (event === "thinking") {
          appendThinking(column, data.text);
        } else if (event === "status") {
          const label = data.phase === "queued" ? format(i18n.queued, { position: data.position }) : i18n[data.phase];
          if (!run.stopRequested) setStatus(column, label);
        } else if (event === "done") {
          run.ended = true;
          view.end();
          finish(column, data.state, data.stats);
        } else if (event === "error") {
          run.ended = true;
          view.end();
          showColumnError(column, data.message);
          finish(column, "error");
        }
      }
    } catch (error) {
      // The connection broke: said below, in this column only.
    }
    if (!run.ended) {
      run.ended = true;
      view.end();
      finish(column, "disconnected");
      showColumnError(column, i18n.network);
    }
  }

  function refused(column, message) {
    showColumnError(column, message);
    finish(column, "error");
  }

  async function sendToAll(text) {
    showError("");
    setBusy(true);
    const chosen = inUse();
    runs = columns.map((column, i) => (chosen.includes(i) ? { key: null, stopRequested: false, ended: false } : null));
    chosen.forEach((i) => {
      reset(columns[i], pickers[i]);
      setStatus(columns[i], i18n.waiting);
    });
    // One after the other, in the columns' order: each request leaves once the one before it is
    // in the server's line, so that the first column is the first answered. The scheduler then
    // writes them together when the server can.
    const answering = [];
    for (const i of chosen) {
      const run = runs[i];
      if (run.stopRequested) {
        run.ended = true;
        finish(columns[i], "stopped");
        continue;
      }
      let queued;
      const inLine = new Promise((resolve) => { queued = resolve; });
      answering.push(answerIn(columns[i], pickers[i].value, text, run, queued));
      await inLine;
    }
    await Promise.all(answering);
    runs = null;
    setBusy(false);
  }

  // -- stopping -----------------------------------------------------------------------------
  function stop() {
    if (!runs) return;
    stopButton.disabled = true;
    runs.forEach((run, i) => {
      if (!run || run.ended || run.stopRequested) return;
      run.stopRequested = true;
      setStatus(columns[i], i18n.stopping);
      if (run.key) sendStop(run);
    });
  }

  async function sendStop(run) {
    try {
      const response = await fetch(`${root.dataset.answersUrl}/${run.key}/stop`, {
        method: "POST",
        headers: { Accept: "application/json", "X-CSRFToken": csrfToken },
      });
      // An answer that ended meanwhile is no longer found: nothing left to stop.
      if (!response.ok && !run.ended) {
        const data = await response.json().catch(() => ({}));
        showError(data.error || i18n.failed);
      }
    } catch (error) {
      if (!run.ended) showError(i18n.network);
    }
  }

  // -- the plan: together, or one after the other --------------------------------------------
  let planAsked = 0;
  async function updatePlan() {
    const asked = ++planAsked;
    const query = new URLSearchParams(inUse().map((i) => ["abcd"[i], pickers[i].value]));
    let text;
    let together = "";
    try {
      const response = await fetch(`${root.dataset.planUrl}?${query}`, { headers: { Accept: "application/json" } });
      const data = await response.json().catch(() => ({}));
      text = response.ok ? data.message : data.error || i18n.failed;
      if (response.ok) together = String(data.together);
    } catch (error) {
      text = i18n.network;
    }
    if (asked !== planAsked) return; // the pickers changed again meanwhile: a later answer counts
    planLine.textContent = text;
    planLine.dataset.together = together;
  }

  pickers.forEach((picker, i) => {
    picker.addEventListener("change", () => {
      nameColumn(columns[i], picker);
      updatePlan();
    });
  });

  // Up to four models: "Add a model" shows the next picker and its column, ✕ hides one again.
  addButton.addEventListener("click", () => {
    const next = pickers.findIndex((picker, i) => pickerBoxes[i].classList.contains("hidden"));
    if (next < 0 || runs) return;
    showFlex(pickerBoxes[next], true);
    showFlex(columns[next], true);
    reset(columns[next], pickers[next]); // an earlier comparison's answer is not this one's
    delete columns[next].dataset.state;
    modelsChanged();
    pickers[next].focus();
  });
  root.querySelectorAll("[data-remove-model]").forEach((button) => {
    button.addEventListener("click", () => {
      if (runs) return;
      const i = pickerBoxes.indexOf(button.closest("[data-picker]"));
      showFlex(pickerBoxes[i], false);
      showFlex(columns[i], false);
      modelsChanged();
      addButton.focus();
    });
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = prompt.value.trim();
    if (!text || runs) return;
    sendToAll(text); // the prompt stays in the box: the next comparison often reuses it
  });
  prompt.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && runs) stop();
  });
  stopButton.addEventListener("click", stop);
})();
