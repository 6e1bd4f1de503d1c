// The admin dashboard: refreshes "the server now" every few seconds.
"use strict";

(() => {
  const panel = document.querySelector("[data-live]");
  if (!panel) return;
  const gb = (bytes) => (bytes / 1e9).toFixed(1);

  async function refresh() {
    try {
      const response = await fetch("/admin/live", { headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const live = await response.json();
      panel.querySelector("[data-live-cpu]").textContent = `${live.cpu_percent.toFixed(0)} %`;
      panel.querySelector("[data-live-memory]").textContent = `${gb(live.memory_used)} / ${gb(live.memory_total)} GB`;
      const loaded = panel.querySelector("[data-live-loaded]");
      if (live.loaded.length) {
        loaded.textContent = live.loaded.map((m) => `${m.model} (${(m.memory / 1e9).toFixed(2)} GB)`).join(", ");
      }
    } catch (error) {
      // The server is restarting or the network dropped: the next refresh tries again.
    }
  }
  setInterval(refresh, 3000);
})();
