// Search as you type: the box of templates/chat/_search.html shows the matching conversations
// under it, under their own heading, from GET /search (JSON). Text goes in with textContent
// only, never as HTML.
"use strict";

(() => {
  const DELAY_MS = 250;

  const item = (hit, untitled) => {
    const li = document.createElement("li");
    const link = document.createElement("a");
    link.href = hit.url;
    link.className = "block rounded-lg px-3 py-2 text-sm hover:bg-slate-200/70 dark:hover:bg-slate-800/70";
    const title = document.createElement("span");
    title.className = "block truncate font-medium";
    title.textContent = hit.title || untitled;
    link.append(title);
    if (hit.snippet) {
      const snippet = document.createElement("span");
      snippet.className = "block break-words text-xs text-slate-500 dark:text-slate-400";
      const mark = document.createElement("mark");
      mark.textContent = hit.snippet.match;
      snippet.append(hit.snippet.before, mark, hit.snippet.after);
      link.append(snippet);
    }
    li.append(link);
    return li;
  };

  const message = (text) => {
    const li = document.createElement("li");
    li.className = "px-3 py-2 text-sm text-slate-500 dark:text-slate-400";
    li.textContent = text;
    return li;
  };

  document.querySelectorAll("[data-search]").forEach((box) => {
    const input = box.querySelector("[data-search-input]");
    const results = box.querySelector("[data-search-results]");
    const list = results && results.querySelector("[data-search-list]");
    if (!input || !list) return;
    let timer = null;
    let pending = null;

    const show = (nodes) => {
      list.replaceChildren(...nodes);
      results.classList.toggle("hidden", nodes.length === 0);
    };

    const run = async (query) => {
      if (pending) pending.abort();
      if (!query) { show([]); return; }
      pending = new AbortController();
      try {
        const response = await fetch(`/search?q=${encodeURIComponent(query)}`, {
          headers: { Accept: "application/json" },
          signal: pending.signal,
        });
        const body = await response.json();
        if (!response.ok) { show([message(body.error || "")]); return; }
        show(body.results.length
          ? body.results.map((hit) => item(hit, list.dataset.untitled))
          : [message(list.dataset.none.replace("{query}", () => query))]);
      } catch (error) {
        if (error.name !== "AbortError") show([]);
      }
    };

    input.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => run(input.value.trim()), DELAY_MS);
    });
    input.addEventListener("keydown", (event) => {
      if (event.key !== "Escape") return;
      event.preventDefault(); // Esc clears the search here; it must not also stop an answer
      input.value = "";
      clearTimeout(timer);
      run("");
    });
  });
})();
