// Copying text, and random ids, on every page: also on plain HTTP by IP address (the LAN case),
// where the browser withholds navigator.clipboard and crypto.randomUUID (secure contexts only).
"use strict";

window.Copying = (() => {
  // The old way: select the text in an off-screen box and ask the browser to copy the selection.
  // The user's focus and selection are put back as they were.
  function copyBySelecting(text) {
    const active = document.activeElement;
    const selection = document.getSelection();
    const ranges = [];
    for (let i = 0; selection && i < selection.rangeCount; i++) ranges.push(selection.getRangeAt(i));
    const box = document.createElement("textarea");
    box.value = text;
    box.readOnly = true; // no on-screen keyboard popping up on a phone
    box.tabIndex = -1;
    box.setAttribute("aria-hidden", "true");
    Object.assign(box.style, { position: "fixed", top: "0", left: "-9999px", width: "1px", height: "1px", opacity: "0" });
    document.body.append(box);
    let copied = false;
    try {
      box.focus({ preventScroll: true });
      box.select();
      box.setSelectionRange(0, text.length); // iOS selects nothing with select() alone
      copied = document.execCommand("copy");
    } catch (error) {
      copied = false;
    } finally {
      box.remove();
      if (active && typeof active.focus === "function") active.focus({ preventScroll: true });
      if (selection) {
        selection.removeAllRanges();
        ranges.forEach((range) => selection.addRange(range));
      }
    }
    return copied;
  }

  async function copy(text) {
    const clipboard = navigator.clipboard;
    if (clipboard && typeof clipboard.writeText === "function") {
      try {
        await clipboard.writeText(text);
        return true;
      } catch (error) {
        // Refused (a permission, a document without focus): the old way may still work.
      }
    }
    return copyBySelecting(text);
  }

  // A random (version 4) UUID, as RFC 4122 lays it out.
  function uuid() {
    if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // variant 10xx
    const hex = Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  return { copy, uuid };
})();
