// Behaviour shared by every page. No inline scripts anywhere: the CSP forbids them.
"use strict";

document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form.dataset && form.dataset.confirm;
  if (question && !window.confirm(question)) event.preventDefault();
});

// Close an open menu (<details>) when clicking elsewhere or pressing Escape.
document.addEventListener("click", (event) => {
  document.querySelectorAll("details[open][data-menu]").forEach((menu) => {
    if (!menu.contains(event.target)) menu.open = false;
  });
});
document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") return;
  const open = document.querySelectorAll("details[open][data-menu]");
  if (open.length) event.preventDefault(); // Esc closed a menu: it stops nothing else
  open.forEach((menu) => { menu.open = false; });
});

// Signing out forgets the messages being typed: the next person at this computer must not see them.
document.addEventListener("submit", (event) => {
  if (!event.target.matches("[data-sign-out]")) return;
  try {
    Object.keys(window.localStorage)
      .filter((key) => key.startsWith("causerie:draft:"))
      .forEach((key) => window.localStorage.removeItem(key));
  } catch (error) {
    // Storage unavailable: nothing was kept either.
  }
});

// On a narrow screen the conversation list is hidden; the ☰ button lays it over the page.
(() => {
  const toggle = document.getElementById("sidebar-toggle");
  const sidebar = document.getElementById("sidebar");
  if (!toggle || !sidebar) return;
  const OVERLAY = ["flex", "fixed", "inset-y-0", "left-0", "z-30", "shadow-xl"];
  const setOpen = (open) => {
    sidebar.classList.toggle("hidden", !open);
    OVERLAY.forEach((name) => sidebar.classList.toggle(name, open));
    toggle.setAttribute("aria-expanded", String(open));
  };
  toggle.addEventListener("click", (event) => {
    event.stopPropagation();
    setOpen(sidebar.classList.contains("hidden"));
  });
  document.addEventListener("click", (event) => {
    if (!sidebar.classList.contains("hidden") && sidebar.classList.contains("fixed") && !sidebar.contains(event.target)) {
      setOpen(false);
    }
  });
})();
