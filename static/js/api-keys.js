// The API key shown once: a button copies it, and says so where the eye is ("Copied").
"use strict";

(() => {
  const button = document.querySelector("[data-copy-key]");
  const key = document.querySelector("[data-new-key] [data-key]");
  const status = document.querySelector("[data-copy-status]");
  if (!button || !key) return;
  const words = JSON.parse(document.querySelector('meta[name="ui-strings"]').content);
  const label = button.querySelector("[data-label]");
  let timer = null;

  button.addEventListener("click", async () => {
    const copied = await window.Copying.copy(key.textContent.trim());
    label.textContent = copied ? words.copied : words.copy;
    button.dataset.copied = copied ? "true" : "false";
    if (status) status.textContent = copied ? words.copied : words.copy_failed;
    clearTimeout(timer);
    timer = setTimeout(() => {
      label.textContent = words.copy;
      delete button.dataset.copied;
    }, 2500);
  });
})();
