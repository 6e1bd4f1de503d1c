// The composer's line of what is left of today's quotas (#quota-left, on the chat and compare
// pages): asked again whenever an answer of the page ends or the message box shows a refusal, so
// that it is right before the next message. Kept out of chat.js and compare.js: it only watches
// what they show.
(() => {
  const line = document.getElementById("quota-left");
  if (!line) return;
  let asking = null;

  async function refresh() {
    if (asking) return;
    asking = fetch(line.dataset.quotaUrl, { headers: { Accept: "application/json" } })
      .then((response) => (response.ok ? response.json() : null))
      .then((data) => {
        if (!data) return;
        line.textContent = data.summary;
        line.classList.toggle("hidden", !data.summary);
        line.toggleAttribute("data-spent", data.answers_left === 0 || data.tokens_left === 0);
      })
      .catch(() => {})
      .finally(() => {
        asking = null;
      });
  }

  // An answer's state leaving "generating" (done, stopped, cut at the quota, failed).
  new MutationObserver((changes) => {
    if (changes.some((c) => c.target.dataset && c.target.dataset.state && c.target.dataset.state !== "generating")) {
      refresh();
    }
  }).observe(document.body, { subtree: true, attributes: true, attributeFilter: ["data-state"] });

  // A refusal shown under the message box (the chat's, the compare page's).
  for (const error of document.querySelectorAll("#composer-error, #compare-error")) {
    new MutationObserver(() => {
      if (!error.classList.contains("hidden")) refresh();
    }).observe(error, { attributes: true, attributeFilter: ["class"], childList: true });
  }
})();
