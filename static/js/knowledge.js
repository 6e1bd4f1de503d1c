// A collection's page: the states of its documents refreshed while they are indexed (waiting,
// indexing with its pages and passages, indexed or the reason it failed), until all are done.
(() => {
  const page = document.querySelector("[data-knowledge]");
  if (!page) return;
  const TONES = {
    ready: "text-emerald-700 dark:text-emerald-400",
    error: "text-red-700 dark:text-red-400",
  };
  const WAITING = "text-amber-700 dark:text-amber-400";
  const unfinished = () => page.querySelectorAll('[data-document][data-finished="0"]');

  function update(row, documentState) {
    const cell = row.querySelector("[data-state]");
    const label = cell.querySelector("[data-state-label]");
    cell.dataset.state = documentState.state;
    label.textContent = documentState.label;
    label.className = TONES[documentState.state] || WAITING;
    row.querySelector("[data-pages]").textContent = documentState.pages;
    row.querySelector("[data-chunks]").textContent = documentState.chunks;
    row.dataset.finished = documentState.finished ? "1" : "0";
  }

  async function refresh() {
    try {
      const response = await fetch(page.dataset.statesUrl, { headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const data = await response.json();
      for (const documentState of data.documents) {
        const row = page.querySelector(`[data-document="${documentState.id}"]`);
        if (row) update(row, documentState);
      }
      // Deleted meanwhile (another manager): nothing more to wait for.
      const listed = new Set(data.documents.map((d) => String(d.id)));
      unfinished().forEach((row) => {
        if (!listed.has(row.dataset.document)) row.dataset.finished = "1";
      });
    } catch (error) {
      // The network failed for a moment: the next round asks again.
    }
  }

  async function watch() {
    while (unfinished().length) {
      await new Promise((resolve) => window.setTimeout(resolve, 1500));
      await refresh();
    }
  }
  watch();
})();
