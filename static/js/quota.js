// The composer's line of what is left of today's quotas (#quota-left): asked again whenever an
// answer of the page ends or the composer shows a refusal, so that it is right before the next
// message. Kept out of chat.js: it only watches what chat.js shows.
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

  const error = document.getElementById("composer-error");
  if (error) {
    new MutationObserver(() => {
      if (!error.classList.contains("hidden")) refresh();
    }).observe(error, { attributes: true, attributeFilter: ["class"], childList: true });
  }
})();
