// The benchmark pages: each running benchmark's progress bar follows the server every second,
// the run page's state and machine follow it too, and the start form says how long the run
// chosen will take. Without JavaScript the pages still work; they just don't move until reloaded.
"use strict";

(() => {
  const page = document.querySelector("[data-bench]");
  if (!page) return;
  const phases = JSON.parse(page.dataset.i18n);

  function describe(current) {
    if (!current || !current.phase) return "";
    const phase = (phases[current.phase] || current.phase).replace("{position}", current.position || "?");
    const where = [current.model, current.prompt].filter(Boolean).join(" · ");
    const repetition = current.repetition > 1 ? ` #${current.repetition}` : "";
    const tokens = current.tokens ? ` (${phases.tokens.replace("{tokens}", current.tokens)})` : "";
    return `${where}${repetition}: ${phase}${tokens}`;
  }

  // The parts of this page the server draws (the state's badge, the machine) taken from a
  // fresh copy of the page: the run started, and nothing else of the page is lost.
  async function refreshParts() {
    const parts = document.querySelectorAll("[data-live-part]");
    if (!parts.length) return;
    const response = await fetch(window.location.href, { headers: { Accept: "text/html" } });
    if (!response.ok) return;
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    parts.forEach((part) => {
      const replacement = fresh.querySelector(`[data-live-part="${part.dataset.livePart}"]`);
      if (replacement) part.replaceWith(document.adoptNode(replacement));
    });
  }

  function follow(panel) {
    const bar = panel.querySelector("[data-progress-bar]");
    const done = panel.querySelector("[data-progress-done]");
    const current = panel.querySelector("[data-progress-current]");
    const timer = setInterval(async () => {
      let progress;
      try {
        const response = await fetch(panel.dataset.progressUrl, { headers: { Accept: "application/json" } });
        if (!response.ok) return;
        progress = await response.json();
      } catch (error) {
        return; // the server restarts or the network dropped: the next tick tries again
      }
      bar.max = progress.total || 1;
      bar.value = progress.done;
      done.textContent = progress.done;
      const text = describe(progress.current);
      if (text || progress.state !== "queued") current.textContent = text;
      if (progress.finished) {
        clearInterval(timer);
        window.location.reload(); // the results, the charts and the fit are drawn by the server
        return;
      }
      const machineKnown = String(progress.machine_known);
      if (progress.state !== panel.dataset.state || machineKnown !== panel.dataset.machineKnown) {
        panel.dataset.state = progress.state;
        panel.dataset.machineKnown = machineKnown;
        refreshParts().catch(() => {}); // the next change tries again
      }
    }, 1000);
  }

  document.querySelectorAll("[data-progress]").forEach(follow);

  // -- the start form: how long the run chosen will take here ----------------------------------
  const form = document.querySelector("[data-start-form]");
  const estimate = document.querySelector("[data-estimate]");
  if (form && estimate) {
    const durations = JSON.parse(estimate.dataset.durations);
    const words = JSON.parse(estimate.dataset.i18n);
    const duration = (seconds) => {
      const whole = Math.max(1, Math.round(seconds));
      if (whole < 60) return `${whole} s`;
      return `${Math.floor(whole / 60)} min ${String(whole % 60).padStart(2, "0")} s`;
    };
    const update = () => {
      const data = new FormData(form);
      const models = data.getAll("models");
      const repetitions = Number.parseInt(data.get("repetitions"), 10);
      const row = ((durations[data.get("suite")] || {})[data.get("start")] || {})[data.get("thinking")] || {};
      const passes = models.map((model) => row[model]);
      let text;
      if (!models.length || !(repetitions >= 1)) text = "";
      else if (passes.some((seconds) => seconds === null || seconds === undefined)) text = words.unknown;
      else text = words.about.replace("{time}", duration(passes.reduce((a, b) => a + b, 0) * repetitions));
      estimate.textContent = text;
      estimate.dataset.known = String(text !== "" && text !== words.unknown);
    };
    form.addEventListener("change", update);
    form.addEventListener("input", update);
  }

  // The answers of a run, rendered as the chat renders them (model output: sanitised there).
  const answers = document.querySelector("[data-answers]");
  if (answers && window.Markdown) Markdown.renderStatic(answers);
})();
