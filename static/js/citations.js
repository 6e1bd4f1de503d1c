// An answer's sources: the passages it was written from, folded under it, and its citations
// ("[2]") made links to them. A document's text is untrusted like the model's: passages are
// set as text only, and citations are found in the text nodes of the answer once sanitised
// (markdown.js), never in its HTML, and never inside code or a link.
// chat.js calls `show(answer, sources)` on the "sources" event and `link(answer)` once the
// answer is written; the answers stored when the page opened are linked here.
"use strict";

window.Citations = (() => {
  const wordsElement = document.getElementById("documents-words");
  if (!wordsElement) return null;
  const words = JSON.parse(wordsElement.dataset.words);
  const plural = new Intl.PluralRules(document.documentElement.lang || "fr");
  // [1], [1, 3], [2; 4]: the numbers the prompt asked the model to cite by.
  const CITATION = /\[(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\]/g;
  const HIGHLIGHT_MS = 2000;

  function format(template, values) {
    return template.replace(/\{(\w+)\}/g, (_, key) => values[key]);
  }

  function counted(forms, count, values) {
    return format(forms[plural.select(count)] || forms.other, { count, ...values });
  }

  // The fold's title: how much of the documents was read (the twin of sources_summary in
  // templates/chat/_message.html).
  function summary(sources) {
    const count = (sources.passages || []).length;
    const read = sources.read || {};
    if (!count) return words.none;
    if (read.whole && read.whole.length) {
      const whole = counted(words.whole, read.whole.length, { names: read.whole.join(", ") });
      const others = sources.passages.filter((p) => !read.whole.includes(p.name)).length;
      return others ? `${whole} · ${counted(words.others, others)}` : whole;
    }
    if (read.pages > 1) return counted(words.read, count, { pages: read.pages });
    return counted(words.passages, count);
  }

  function passageItem(answer, passage) {
    const item = document.getElementById("passage-template").content.firstElementChild.cloneNode(true);
    item.id = `source-${answer.dataset.messageId}-${passage.n}`;
    item.dataset.passage = String(passage.n);
    item.querySelector("[data-passage-number]").textContent = String(passage.n);
    const name = item.querySelector("[data-passage-document]");
    name.textContent = passage.name;
    name.href = `/documents/${Number(passage.document_id)}/file`;
    const page = item.querySelector("[data-passage-page]");
    page.textContent = passage.page ? format(words.page, { page: passage.page }) : "";
    page.classList.toggle("hidden", !passage.page);
    const heading = item.querySelector("[data-passage-heading]");
    heading.textContent = passage.heading || "";
    heading.classList.toggle("hidden", !passage.heading);
    item.querySelector("[data-passage-text]").textContent = passage.text || "";
    return item;
  }

  // The sources of `answer` ({passages, read}; {} when its question had none).
  function show(answer, sources) {
    const fold = answer.querySelector("[data-sources]");
    if (!fold) return;
    const has = Boolean(sources) && Array.isArray(sources.passages);
    fold.classList.toggle("hidden", !has);
    if (!has) return;
    fold.querySelector("[data-sources-summary]").textContent = summary(sources);
    fold.querySelector("[data-passages]").replaceChildren(...sources.passages.map((p) => passageItem(answer, p)));
  }

  function passageOf(answer, number) {
    return answer.querySelector(`[data-sources] [data-passage="${number}"]`);
  }

  // Each "[n]" of the written answer whose passage is shown becomes a link to it; a number
  // beyond the passages stays as the model wrote it.
  function link(answer) {
    const fold = answer.querySelector("[data-sources]");
    const markdown = answer.querySelector("[data-markdown]");
    if (!fold || !markdown || !fold.querySelector("[data-passage]")) return;
    const walker = document.createTreeWalker(markdown, NodeFilter.SHOW_TEXT, {
      acceptNode: (node) =>
        node.parentElement.closest("pre, code, a, [data-math], [data-citation]") || !/\[\d/.test(node.data)
          ? NodeFilter.FILTER_REJECT
          : NodeFilter.FILTER_ACCEPT,
    });
    const found = [];
    while (walker.nextNode()) found.push(walker.currentNode);
    for (const node of found) {
      const parts = [];
      let last = 0;
      for (const match of node.data.matchAll(CITATION)) {
        const numbers = match[1].split(/\s*[,;]\s*/);
        if (!numbers.some((n) => passageOf(answer, Number(n)))) continue;
        parts.push(node.data.slice(last, match.index));
        for (const number of numbers) {
          parts.push(passageOf(answer, Number(number)) ? citation(answer, Number(number)) : `[${number}]`);
        }
        last = match.index + match[0].length;
      }
      if (!parts.length) continue;
      parts.push(node.data.slice(last));
      node.replaceWith(...parts.filter((part) => part !== ""));
    }
  }

  function citation(answer, number) {
    const passage = passageOf(answer, number);
    const link = document.createElement("a");
    link.href = `#${passage.id}`;
    link.dataset.citation = String(number);
    link.className =
      "not-prose mx-0.5 inline-flex h-5 min-w-[1.25rem] items-center justify-center rounded-full bg-brand-100 px-1 align-text-top text-xs font-semibold text-brand-800 no-underline hover:bg-brand-200 dark:bg-brand-900 dark:text-brand-100 dark:hover:bg-brand-800";
    link.textContent = String(number);
    const name = passage.querySelector("[data-passage-document]").textContent;
    const page = passage.querySelector("[data-passage-page]").textContent;
    link.title = page ? `${name}, ${page}` : name;
    link.setAttribute("aria-label", format(words.cite, { number, name: link.title }));
    return link;
  }

  // A citation clicked: its passage shown (the fold opened), scrolled to, and lit for a moment.
  document.addEventListener("click", (event) => {
    const link = event.target instanceof Element ? event.target.closest("a[data-citation]") : null;
    const passage = link && document.getElementById(link.getAttribute("href").slice(1));
    if (!passage) return;
    event.preventDefault();
    passage.closest("details").open = true;
    passage.scrollIntoView({ block: "center", behavior: "smooth" });
    passage.focus({ preventScroll: true });
    passage.dataset.highlight = "";
    window.clearTimeout(passage.unlight);
    passage.unlight = window.setTimeout(() => delete passage.dataset.highlight, HIGHLIGHT_MS);
  });

  document.querySelectorAll('#messages article[data-role="assistant"]').forEach(link);

  return { show, link };
})();
