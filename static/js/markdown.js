// Markdown for model output, which is untrusted: marked renders, DOMPurify sanitizes, KaTeX
// writes the formulas ($…$, $$…$$, \(…\), \[…\]) as MathML.
//
// While an answer streams, only the block still being written is re-rendered, at most once
// per animation frame; finished blocks are rendered once and never touched again, so a long
// answer costs the browser the same per token as a short one. Code blocks are coloured and get
// a copy button once finished; the block being written stays plain.
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
    RETURN_DOM_FRAGMENT: true,
  };
  // highlight.js's output is made from escaped text; sanitized all the same, down to bare spans.
  const PURIFY_COLOURS = { ALLOWED_TAGS: ["span"], ALLOWED_ATTR: ["class"], RETURN_DOM_FRAGMENT: true };
  const LANGUAGE = /^language-([\w+#.-]{1,40})$/;
  const FENCE = /^ {0,3}(`{3,}|~{3,})(.*)$/;
  // KaTeX's MathML, sanitized on its own: the answer's sanitizer (PURIFY) still refuses any
  // <math> the model writes as HTML; only what KaTeX made of a formula gets MathML. No link
  // (\href is refused by trust: false anyway), no id or class, no style.
  const PURIFY_MATH = {
    USE_PROFILES: { mathMl: true },
    // KaTeX puts the formula's TeX in an <annotation>, which MathML does not show; without
    // these two tags the sanitizer would keep its text, shown beside the formula.
    ADD_TAGS: ["semantics", "annotation"],
    FORBID_ATTR: ["href", "xlink:href", "id", "class", "style", "src"],
    RETURN_DOM_FRAGMENT: true,
  };
  const KATEX = {
    output: "mathml", // no KaTeX CSS, and no inline style the CSP would refuse
    throwOnError: true, // a formula KaTeX cannot read stays as the model wrote it
    trust: false, // no \href, \url, \includegraphics, \htmlClass…
    strict: "ignore",
    maxSize: 10, // em: a \rule or \hspace no wider than a phone's screen
    maxExpand: 200, // macros that expand forever fail fast
  };
  // "\[2\]" is a citation whose brackets the model escaped, as Markdown allows: text ("[2]",
  // linked to its passage by citations.js), not a display formula of the number 2.
  const CITATION = /^\s*\d{1,3}(?:\s*[,;]\s*\d{1,3})*\s*$/;
  const MATH_MAX_CHARS = 5_000; // how far a formula's end is looked for, so a stray $ costs little
  // A placeholder for each formula while marked renders and DOMPurify sanitizes. Its attribute
  // is kept only with this page's secret prefix: the model cannot make one of its own.
  const MATH_SLOT = `m${Array.from(crypto.getRandomValues(new Uint32Array(2)), (n) => n.toString(36)).join("")}-`;
  const HIGHLIGHT_MAX_CHARS = 100_000; // beyond, colouring would freeze the page for too long
  const GUESS_MAX_CHARS = 20_000; // guessing an unnamed language tries them all
  // The languages a guess may pick: the rarer ones (VB.NET, Perl…) win on SQL or shell text.
  const GUESSES = [
    "bash", "c", "cpp", "csharp", "css", "diff", "go", "java", "javascript", "json", "kotlin", "markdown",
    "php", "python", "ruby", "rust", "shell", "sql", "swift", "typescript", "xml", "yaml",
  ];

  const WORDS = {
    copy: "Copy",
    copy_code: "Copy the code",
    copied: "Copied",
    copy_failed: "Could not copy: select the text and press Ctrl+C.",
  };
  try {
    Object.assign(WORDS, JSON.parse(document.querySelector('meta[name="ui-strings"]').content));
  } catch (error) {
    // A page without the words: the English ones above.
  }

  DOMPurify.addHook("afterSanitizeAttributes", (node) => {
    if (node.tagName === "A") {
      node.setAttribute("target", "_blank");
      node.setAttribute("rel", "noopener noreferrer nofollow");
    }
  });
  // A fence's language reaches us as marked's class on <code>: kept through the sanitizer only
  // to be read, and removed, by codeBlocks() before anything is shown.
  DOMPurify.addHook("uponSanitizeAttribute", (node, event) => {
    if (node.nodeName === "CODE" && event.attrName === "class" && LANGUAGE.test(event.attrValue)) {
      event.forceKeepAttr = true;
    }
    if (event.attrName === "data-math" && event.attrValue.startsWith(MATH_SLOT)) event.forceKeepAttr = true;
  });

  // Formulas, found the way pandoc and markdown-it-texmath find them, so that money stays text:
  // an opening $ is followed by a non-space and not preceded by a digit; a closing $ is preceded
  // by a non-space and not followed by a digit ("5 $ et 10 $", "$5 and $10" are not formulas).
  // Code spans and blocks are read by marked before, and never reach these.
  let formulas = []; // those of the text being rendered, by their placeholder's number

  const inlineMath = {
    name: "math",
    level: "inline",
    start(src) {
      const at = src.search(/\$|\\[([]/);
      return at < 0 ? undefined : at;
    },
    tokenizer(src, tokens) {
      const before = tokens.length ? tokens[tokens.length - 1].raw.slice(-1) : "";
      const found = inlineFormula(src, before);
      if (found) return { type: "math", raw: src.slice(0, found.length), tex: found.tex, display: found.display };
      return undefined;
    },
    renderer: (token) => mathSlot(token, "span"),
  };

  // $$ or \[ opening a block, its end closing a line: display math whose lines marked would
  // otherwise read as Markdown (a "- x" line, a "=" under a line). No blank line inside, as in TeX.
  const MATH_BLOCK = /^ {0,3}(\$\$|\\\[)((?:[^\n]|\n(?![ \t]*(?:\n|$))){1,5000}?)(\$\$|\\\])[ \t]*(?:\n+|$)/;
  const blockMath = {
    name: "mathBlock",
    level: "block",
    tokenizer(src) {
      const match = MATH_BLOCK.exec(src);
      if (!match || match[3] !== (match[1] === "$$" ? "$$" : "\\]") || !match[2].trim()) return undefined;
      if (match[1] === "\\[" && CITATION.test(match[2])) return undefined;
      return { type: "mathBlock", raw: match[0], tex: match[2].trim(), display: true };
    },
    renderer: (token) => mathSlot(token, "div"),
  };

  // The formula at the start of `src`: its length and TeX, or null.
  function inlineFormula(src, before) {
    const head = src.slice(0, MATH_MAX_CHARS);
    let close;
    if (head.startsWith("\\(") || head.startsWith("\\[")) {
      close = head.indexOf(head[1] === "(" ? "\\)" : "\\]", 2);
      if (head[1] === "[" && CITATION.test(head.slice(2, close))) return null;
      return close > 2 && head.slice(2, close).trim()
        ? { length: close + 2, tex: head.slice(2, close).trim(), display: head[1] === "[" }
        : null;
    }
    if (head[0] !== "$" || before === "\\") return null;
    if (head[1] === "$") {
      close = head.indexOf("$$", 2);
      return close > 2 && head.slice(2, close).trim()
        ? { length: close + 2, tex: head.slice(2, close).trim(), display: true }
        : null;
    }
    if (!head[1] || /\s/.test(head[1]) || /\d/.test(before)) return null;
    for (let at = 1; (at = head.indexOf("$", at + 1)) > 0;) {
      if (head[at - 1] === "\\") continue; // \$, a dollar inside the formula
      if (!/\s/.test(head[at - 1]) && !/\d/.test(head[at + 1] || "")) {
        return { length: at + 1, tex: head.slice(1, at), display: false };
      }
    }
    return null;
  }

  // The formula's source as text, in an element placeMath() will fill.
  function mathSlot(token, tag) {
    formulas.push(token);
    const text = token.raw.trim().replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
    return `<${tag} data-math="${MATH_SLOT}${formulas.length - 1}">${text}</${tag}>`;
  }

  const markdown = new marked.Marked({ gfm: true, breaks: false, extensions: [blockMath, inlineMath] });

  // Sanitized DOM, its code blocks wrapped; `finished` ones also coloured and given a copy button.
  function renderFragment(source, finished) {
    formulas = [];
    const fragment = DOMPurify.sanitize(markdown.parse(source), PURIFY);
    placeMath(fragment, formulas);
    formulas = [];
    codeBlocks(fragment, finished);
    return fragment;
  }

  // Each placeholder gets its formula's MathML, or keeps the formula's text when KaTeX cannot
  // read it (or is missing): a bad formula reads as the model wrote it, never as an error.
  function placeMath(fragment, found) {
    for (const slot of fragment.querySelectorAll("[data-math]")) {
      const token = found[Number(slot.dataset.math.slice(MATH_SLOT.length))];
      slot.removeAttribute("data-math");
      const math = token && formula(token.tex, token.display);
      if (!math) continue;
      slot.replaceChildren(math);
      slot.dataset.math = token.display ? "display" : "inline";
    }
  }

  function formula(tex, display) {
    if (!window.katex) return null;
    let html;
    try {
      html = window.katex.renderToString(tex, { ...KATEX, displayMode: display });
    } catch (error) {
      return null;
    }
    const math = DOMPurify.sanitize(html, PURIFY_MATH);
    const root = math.firstChild;
    if (math.childNodes.length !== 1 || !root || root.nodeName.toLowerCase() !== "math") return null;
    alignColumns(math);
    return math;
  }

  // Chromium draws MathML Core, which leaves out a table's columnalign and columnspacing: an
  // aligned block's "=" signs would not line up. Each cell gets its column's alignment as an
  // attribute the answers' CSS follows (static/src/answers.css), never an inline style.
  function alignColumns(math) {
    for (const table of math.querySelectorAll("mtable")) {
      const aligns = (table.getAttribute("columnalign") || "").split(/\s+/).filter(Boolean);
      if (/^0(em)?$/.test((table.getAttribute("columnspacing") || "").trim())) table.setAttribute("data-tight", "");
      for (const row of table.children) {
        [...row.children].forEach((cell, column) => {
          const align = aligns[Math.min(column, aligns.length - 1)];
          if (align === "left" || align === "right") cell.setAttribute("data-align", align);
        });
      }
    }
  }

  function render(source) {
    const box = document.createElement("div");
    box.append(renderFragment(source, true));
    return box.innerHTML;
  }

  function codeBlocks(fragment, finished) {
    for (const code of fragment.querySelectorAll("code[class]")) {
      const match = LANGUAGE.exec(code.getAttribute("class"));
      code.removeAttribute("class");
      const pre = code.parentElement;
      if (match && pre && pre.tagName === "PRE" && pre.childElementCount === 1) pre.dataset.language = match[1];
    }
    for (const pre of fragment.querySelectorAll("pre")) {
      if (pre.parentElement && pre.parentElement.closest("pre")) continue;
      // A header bar above the code, for its language and the copy button, so the button never
      // covers a line. The same header while written and once finished: the block keeps its
      // size when the button and the colours come.
      const block = document.createElement("div");
      block.dataset.codeBlock = "";
      const header = document.createElement("div");
      header.dataset.codeHeader = "";
      const language = document.createElement("span");
      language.dataset.codeLanguage = "";
      language.textContent = pre.dataset.language || "";
      header.append(language);
      pre.replaceWith(block);
      block.append(header, pre);
      if (!finished) continue;
      const code = pre.firstElementChild;
      if (code && code.tagName === "CODE" && pre.childElementCount === 1 && !code.childElementCount) {
        highlight(code, pre.dataset.language);
      }
      header.append(copyButton());
    }
  }

  // Colours from highlight.js, marked with data-hl rather than classes: an answer holds no
  // class at all (see PURIFY), so nothing in it can borrow the page's.
  function highlight(code, language) {
    const hljs = window.hljs;
    const text = code.textContent;
    if (!hljs || text.length > HIGHLIGHT_MAX_CHARS) return;
    let result;
    try {
      if (language) {
        if (!hljs.getLanguage(language)) return;
        result = hljs.highlight(text, { language, ignoreIllegals: true });
      } else {
        if (text.length > GUESS_MAX_CHARS) return;
        result = hljs.highlightAuto(text, GUESSES);
        if (result.relevance < 3) return; // a poor guess colours prose as code
      }
    } catch (error) {
      return; // left plain
    }
    const marks = DOMPurify.sanitize(result.value, PURIFY_COLOURS);
    if (marks.textContent !== text) return; // colours only: never a character more or less
    for (const span of marks.querySelectorAll("span")) {
      span.dataset.hl = (span.getAttribute("class") || "").replace(/\bhljs-/g, "");
      span.removeAttribute("class");
    }
    code.replaceChildren(marks);
    code.dataset.highlighted = result.language || language;
  }

  function copyButton() {
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.copyCode = "";
    button.textContent = WORDS.copy;
    button.setAttribute("aria-label", WORDS.copy_code);
    return button;
  }

  // One listener for every copy button, those of render()'s HTML too. Model output can make
  // neither a <button> nor a data- attribute, so only ours match.
  document.addEventListener("click", async (event) => {
    const button = event.target instanceof Element ? event.target.closest("button[data-copy-code]") : null;
    const pre = button && button.closest("[data-code-block]")?.querySelector("pre");
    if (!pre) return;
    const text = pre.textContent.replace(/\n$/, "");
    const copied = window.Copying ? await window.Copying.copy(text) : false;
    showCopied(button, copied);
    // Selected for the Ctrl+C the message asks for.
    if (!copied) window.getSelection().selectAllChildren(pre);
  });

  function showCopied(button, copied) {
    clearTimeout(button.copyTimer);
    const text = copied ? WORDS.copied : WORDS.copy_failed;
    button.dataset.copyState = copied ? "copied" : "failed";
    button.textContent = text;
    button.setAttribute("aria-label", text);
    button.copyTimer = setTimeout(() => {
      delete button.dataset.copyState;
      button.textContent = WORDS.copy;
      button.setAttribute("aria-label", WORDS.copy_code);
    }, copied ? 2000 : 8000); // the failure says what to do: time to read it
  }

  // Follows fences line by line: `inside` tells whether the text so far is in a code block.
  class Fences {
    constructor() {
      this.open = null; // the opening fence ("```", "~~~~") while inside a code block
      this.atMargin = false;
    }

    // Reads one complete line; true when it closes a code block opened at the left margin.
    read(line) {
      const match = FENCE.exec(line);
      if (this.open) {
        const closes = match && match[1][0] === this.open[0] && match[1].length >= this.open.length
          && match[2].trim() === "";
        if (!closes) return false;
        this.open = null;
        return this.atMargin;
      }
      if (match && !(match[1][0] === "`" && match[2].includes("`"))) {
        this.open = match[1];
        this.atMargin = line[0] === match[1][0];
      }
      return false;
    }

    get inside() {
      return this.open !== null;
    }
  }

  // The offset after the last line that ends a block for good: a blank line outside a code
  // block, or the fence closing a top-level code block. Everything before it will not change
  // however the answer goes on.
  function stableLength(text, from) {
    const fences = new Fences();
    let stable = from;
    let offset = from;
    const lines = text.slice(from).split("\n");
    for (let i = 0; i < lines.length - 1; i++) {
      const line = lines[i];
      offset += line.length + 1;
      const wasInside = fences.inside;
      if (fences.read(line)) stable = offset;
      else if (!wasInside && !fences.inside && line.trim() === "" && i > 0) {
        const next = lines[i + 1];
        // A list or an indented block may go on after a blank line: not a safe cut yet.
        if (next !== "" && !/^\s*([-*+]|\d+[.)])\s|^\s{2,}/.test(next)) stable = offset;
      }
    }
    return stable;
  }

  // What of the block being written to show now. Its last line, still being written, may be
  // markup that changes the block above it ("-" or "===" turns a paragraph into a heading,
  // "```" opens code); and a table's header row reads as a paragraph until its delimiter row
  // comes. Both wait until they say more, so that no block changes its kind, and its height,
  // under the reader's eyes.
  function shownPart(open) {
    const lineStart = open.lastIndexOf("\n") + 1;
    if (/^[\s\-=*+#|:`~>\d.)]*$/.test(open.slice(lineStart))) open = open.slice(0, lineStart);
    const fences = new Fences();
    const lines = open.split("\n");
    lines.slice(0, -1).forEach((line) => fences.read(line));
    if (fences.inside) return open;
    const body = open.endsWith("\n") ? open.slice(0, -1) : open;
    const last = body.lastIndexOf("\n") + 1;
    const previous = body.slice(body.lastIndexOf("\n", last - 2) + 1, Math.max(last - 1, 0));
    if (/^\s*\|/.test(body.slice(last)) && (last === 0 || !/^\s*\|/.test(previous))) return open.slice(0, last);
    return open;
  }

  class StreamingView {
    constructor(element) {
      this.element = element;
      this.text = "";
      this.done = 0;
      this.shown = "";
      this.pending = false;
      this.ended = false;
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

    flush(final = false) {
      this.pending = false;
      if (this.ended) return;
      const stable = final ? this.text.length : stableLength(this.text, this.done);
      if (stable > this.done) {
        this.finished.append(renderFragment(this.text.slice(this.done, stable), true));
        this.done = stable;
        this.shown = null;
        // A new box for the open block: the old one, pushed down by what just finished above
        // it, would count as content that moved (a layout shift); a new one is new content.
        const open = document.createElement("div");
        this.open.replaceWith(open);
        this.open = open;
      }
      const shown = final ? "" : shownPart(this.text.slice(this.done));
      if (shown !== this.shown) {
        this.open.replaceChildren(renderFragment(shown, false));
        this.shown = shown;
      }
    }

    end() {
      this.flush(true);
      this.ended = true;
      delete this.element.dataset.streaming;
    }
  }

  // Render the stored answers of a page once; their text was put there escaped by the server.
  function renderStatic(root) {
    root.querySelectorAll("[data-markdown]").forEach((element) => {
      if (element.dataset.rendered) return;
      element.replaceChildren(renderFragment(element.textContent, true));
      element.dataset.rendered = "true";
    });
  }

  return { render, renderStatic, StreamingView };
})();
