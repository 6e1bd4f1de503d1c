// The admin dashboard: refreshes "the server now", its figures and its small chart (drawn by
// the server, like the others), every few seconds.
"use strict";

(() => {
  const panel = document.querySelector("[data-live]");
  if (!panel) return;
  const i18n = JSON.parse(panel.dataset.i18n);
  const gigabytes = (bytes, digits) => i18n.gigabytes.replace("{size}", Numbers.decimal(bytes / 1e9, digits));

  async function refresh() {
    try {
      const response = await fetch("/admin/live", { headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const live = await response.json();
      panel.querySelector("[data-live-cpu]").textContent = Numbers.percent(live.cpu_percent);
      panel.querySelector("[data-live-memory]").textContent =
        `${Numbers.decimal(live.memory_used / 1e9, 1)} / ${gigabytes(live.memory_total, 1)}`;
      const loaded = panel.querySelector("[data-live-loaded]");
      if (live.loaded.length) {
        loaded.textContent = live.loaded.map((m) => `${m.model} (${gigabytes(m.memory, 2)})`).join(", ");
      }
      // The server's own drawing (numbers and its words only): the same code draws it at load.
      const chart = new DOMParser().parseFromString(`<div>${live.chart}</div>`, "text/html").body.firstElementChild;
      panel.querySelector("[data-live-chart]").replaceChildren(...chart.childNodes);
    } catch (error) {
      // The server is restarting or the network dropped: the next refresh tries again.
    }
  }
  setInterval(refresh, 3000);
})();
