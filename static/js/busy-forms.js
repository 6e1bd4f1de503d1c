// A form whose work takes a moment (a password is hashed: about a second and a half) shows that
// it is at work and cannot be sent twice. Its submit button carries data-busy-label.
"use strict";

(() => {
  const SPINNER = "mr-2 inline-block h-4 w-4 animate-spin rounded-full border-2 border-white/40 border-t-white align-[-3px]";

  document.addEventListener("submit", (event) => {
    const form = event.target;
    const button = form.querySelector("button[type=submit][data-busy-label]");
    if (!button || event.defaultPrevented) return;
    if (form.dataset.sending) {
      event.preventDefault(); // the second press: the first is under way
      return;
    }
    form.dataset.sending = "1";
    // Disabled after the submission has started, so the browser still sends the form.
    setTimeout(() => {
      button.dataset.idleLabel = button.textContent;
      button.disabled = true;
      button.setAttribute("aria-busy", "true");
      const spinner = document.createElement("span");
      spinner.className = SPINNER;
      spinner.setAttribute("aria-hidden", "true");
      button.replaceChildren(spinner, document.createTextNode(button.dataset.busyLabel));
    }, 0);
  });

  // Back to the page from the history (the browser's page cache): the form can be sent again.
  window.addEventListener("pageshow", () => {
    document.querySelectorAll("form[data-sending]").forEach((form) => {
      delete form.dataset.sending;
      const button = form.querySelector("button[type=submit][data-busy-label]");
      if (!button || !button.dataset.idleLabel) return;
      button.disabled = false;
      button.removeAttribute("aria-busy");
      button.textContent = button.dataset.idleLabel;
    });
  });
})();
