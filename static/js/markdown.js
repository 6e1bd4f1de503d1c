// Markdown for model output, which is untrusted: marked renders, DOMPurify sanitizes.
//
// While an answer streams, only the block still being written is re-rendered, at most once
// per animation frame; finished blocks are rendered once and never touched again, so a long
// answer costs the browser the same per token as a short one.
"use strict";

window.Markdown = (() => {
  const PURIFY = {
    USE_PROFILES: { html: true },
    // No images, media or forms from model output: an image URL could carry the
    // conversation to another server, and a form could pose as the app. No label either (one
    // `for` the page's Send button would send the prompt when clicked), nor a dialog laid over
    // the page.
    FORBID_TAGS: [
      "img", "picture", "video", "audio", "source", "iframe", "form", "input", "button", "select", "textarea",
      "style", "svg", "math", "template", "label", "dialog",
    ],
    // No class, id or name either: the page's own classes could lay an answer over the whole
    // page, and an id could shadow an element the page looks up. And no URL but a link's:
    // whatever an element fetches by itself (a table's background) would reach another server.
    FORBID_ATTR: [
      "style", "srcset", "class", "id", "name",
      "src", "background", "poster", "action", "formaction", "ping", "data", "cite", "xlink:href",
      "for", "popovertarget", "popover",
    ],
    ALLOW_DATA_ATTR: false,
    // Links to web pages, mail, or this site; not tel:, sms:, ftp: and the like (DOMPurify's own
    // list), nor javascript: or data: (refused by DOMPurify either way).
    ALLOWED_URI_REGEXP: /^(?:(?:https?|mailto):|[^a-z]|[a-z+.-]+(?:[^a-z+.\-:]|$))/i,
  };

  DOMPurify.addHook("afterSanitizeAttributes", (node) => {
    if (node.tagName === "A") {
      node.setAttribute("target", "_blank");
      node.setAttribute("rel", "noopener noreferrer nofollow");
    }
  });

  function render(source) {
    return DOMPurify.sanitize(marked.parse(source, { gfm: true, breaks: false }), PURIFY);
  }

  // The offset after the last blank line that closes a block outside a code fence:
  // everything before it will not change however the answer goes on.
  function stableLength(text, from) {
    let inFence = false;
    let stable = from;
    let offset = from;
    const lines = text.slice(from).split("\n");
    for (let i = 0; i < lines.length - 1; i++) {
      const line = lines[i];
      offset += line.length + 1;
      if (/^\s{0,3}(```|~~~)/.test(line)) inFence = !inFence;
      else if (!inFence && line.trim() === "" && i > 0) {
        const next = lines[i + 1];
        // A list or an indented block may go on after a blank line: not a safe cut yet.
        if (next !== "" && !/^\s*([-*+]|\d+[.)])\s|^\s{2,}/.test(next)) stable = offset;
      }
    }
    return stable;
  }

  class StreamingView {
    constructor(element) {
      this.element = element;
      this.text = "";
      this.done = 0;
      this.pending = false;
      this.element.replaceChildren();
      this.finished = document.createElement("div");
      this.open = document.createElement("div");
      this.element.append(this.finished, this.open);
      this.element.dataset.streaming = "true";
    }

    append(text) {
      this.text += text;
      if (!this.pending) {
        this.pending = true;
        window.requestAnimationFrame(() => this.flush());
      }
    }

    flush() {
      this.pending = false;
      const stable = stableLength(this.text, this.done);
      if (stable > this.done) {
        this.finished.insertAdjacentHTML("beforeend", render(this.text.slice(this.done, stable)));
        this.done = stable;
      }
      this.open.innerHTML = render(this.text.slice(this.done));
    }

    end() {
      this.flush();
      delete this.element.dataset.streaming;
    }
  }

  // Render the stored answers of a page once; their text was put there escaped by the server.
  function renderStatic(root) {
    root.querySelectorAll("[data-markdown]").forEach((element) => {
      if (element.dataset.rendered) return;
      element.innerHTML = render(element.textContent);
      element.dataset.rendered = "true";
    });
  }

  return { render, renderStatic, StreamingView };
})();
