// A colleague's shared conversation, read-only: its answers rendered as the chat renders
// them (markdown.js: sanitised, no script of the model's). citations.js, loaded after, links
// their [n] to the passages.
"use strict";

Markdown.renderStatic(document.getElementById("messages"));
