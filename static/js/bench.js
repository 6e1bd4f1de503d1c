// The benchmark pages: each running benchmark's progress bar follows the server every second.
// Without JavaScript the pages still work; they just don't move until reloaded.
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
      if (text) current.textContent = text;
      if (progress.finished) {
        clearInterval(timer);
        window.location.reload(); // the results, the charts and the fit are drawn by the server
      }
    }, 1000);
  }

  document.querySelectorAll("[data-progress]").forEach(follow);
})();
