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

// On a narrow screen the conversation list is hidden; the ☰ button lays it over the page, over
// a backdrop. A tap on the backdrop, its ✕ or Esc closes it. While open it holds the focus (the
// page under it is inert), which goes back to ☰ when it closes.
(() => {
  const toggle = document.getElementById("sidebar-toggle");
  const sidebar = document.getElementById("sidebar");
  if (!toggle || !sidebar) return;
  const backdrop = document.getElementById("sidebar-backdrop");
  const page = toggle.closest("main");
  const OVERLAY = ["flex", "fixed", "inset-y-0", "left-0", "z-30", "shadow-xl"];
  const isOpen = () => toggle.getAttribute("aria-expanded") === "true";
  const setOpen = (open, { refocus = true } = {}) => {
    sidebar.classList.toggle("hidden", !open);
    OVERLAY.forEach((name) => sidebar.classList.toggle(name, open));
    if (backdrop) backdrop.classList.toggle("hidden", !open);
    if (page) page.inert = open;
    if (open) {
      sidebar.setAttribute("role", "dialog");
      sidebar.setAttribute("aria-modal", "true");
    } else {
      sidebar.removeAttribute("role");
      sidebar.removeAttribute("aria-modal");
    }
    toggle.setAttribute("aria-expanded", String(open));
    if (open) (sidebar.querySelector("button[data-sidebar-close]") || sidebar).focus();
    else if (refocus) toggle.focus();
  };
  toggle.addEventListener("click", (event) => {
    event.stopPropagation();
    setOpen(!isOpen());
  });
  document.addEventListener("click", (event) => {
    if (!isOpen()) return;
    const closer = event.target.closest && event.target.closest("[data-sidebar-close]");
    if (closer || !sidebar.contains(event.target)) setOpen(false);
  });
  document.addEventListener("keydown", (event) => {
    // After the handlers above: Esc first closes a menu open in the list, or clears its search.
    if (event.key !== "Escape" || !isOpen() || event.defaultPrevented) return;
    event.preventDefault(); // it closed the list: it stops no answer
    setOpen(false);
  });
  // Widened past the phone layout (a rotated tablet): the list is in the page again.
  window.matchMedia("(min-width: 768px)").addEventListener("change", (query) => {
    if (query.matches && isOpen()) setOpen(false, { refocus: false });
  });
})();

// The reader's time zone, for the server to date things as they live them (the sidebar's
// "Today", "Yesterday"): kept in a cookie, written again only when it changes.
(() => {
  let zone = "";
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch (error) {
    return; // no Intl: the server's default (UTC)
  }
  const value = encodeURIComponent(zone);
  if (!zone || document.cookie.split("; ").includes(`tz=${value}`)) return;
  const secure = window.location.protocol === "https:" ? "; secure" : "";
  document.cookie = `tz=${value}; path=/; max-age=31536000; samesite=lax${secure}`;
})();
