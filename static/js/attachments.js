// Files attached to the next message (the paperclip, or dropped onto the chat): each is uploaded
// at once and shown as a chip above the message box, its state live (sending, reading,
// indexing, ready, or why it was refused) until the message takes it.
// chat.js asks `Attachments.forMessage()` for their ids when sending, and `sent(question)` to
// show them on the question once the server took it.
"use strict";

window.Attachments = (() => {
  const list = document.getElementById("attachments");
  if (!list) return null;
  const words = JSON.parse(document.getElementById("documents-words").dataset.words);
  const csrfToken = document.querySelector('meta[name="csrf-token"]').content;
  const button = document.getElementById("attach");
  const input = document.getElementById("attach-input");
  const dropZone = document.getElementById("drop-zone");
  const chat = document.getElementById("chat");
  const maxBytes = Number(list.dataset.maxUploadMb) * 1024 * 1024;
  const plural = new Intl.PluralRules(document.documentElement.lang || "fr");
  const POLL_MS = 1000;
  const chips = new Set(); // { element, name, id, state, upload (a Promise), xhr, timer }

  function format(template, values) {
    return template.replace(/\{(\w+)\}/g, (_, key) => values[key]);
  }

  function counted(forms, count, values) {
    return format(forms[plural.select(count)] || forms.other, { count, ...values });
  }

  function announce(text) {
    const region = document.getElementById("announcer");
    if (region) region.textContent = text;
  }

  function size(bytes) {
    if (bytes < 1024 * 1024) return format(words.kb, { size: Numbers.decimal(Math.max(1, Math.round(bytes / 1024)), 0) });
    return format(words.mb, { size: Numbers.decimal(bytes / (1024 * 1024), 1) });
  }

  function showList() {
    const any = chips.size > 0;
    list.classList.toggle("hidden", !any);
    list.classList.toggle("flex", any);
  }

  // The chip's state: "sending", "waiting", "indexing", "ready" or "error", with its words.
  function setState(chip, state, text) {
    chip.state = state;
    chip.element.dataset.state = state;
    const label = chip.element.querySelector("[data-chip-state]");
    label.dataset.state = state;
    label.textContent = text;
  }

  function refuse(chip, message) {
    window.clearTimeout(chip.timer);
    setState(chip, "error", message);
    announce(message);
  }

  function add(file) {
    const element = document.getElementById("attachment-chip-template").content.firstElementChild.cloneNode(true);
    const chip = { element, name: file.name, id: null, state: "", upload: null, xhr: null, timer: 0 };
    element.querySelector("[data-chip-name]").textContent = file.name;
    element.querySelector("[data-chip-name]").title = file.name;
    element.querySelector("[data-chip-size]").textContent = size(file.size);
    const remove = element.querySelector("[data-chip-remove]");
    remove.setAttribute("aria-label", format(words.remove, { name: file.name }));
    remove.title = remove.getAttribute("aria-label");
    remove.addEventListener("click", () => discard(chip, true));
    chips.add(chip);
    list.append(element);
    showList();
    // The server's limit, told before a byte is sent: the same words as its own refusal.
    if (file.size > maxBytes) {
      const mb = Math.ceil(file.size / (1024 * 1024));
      refuse(chip, format(words.too_large, { name: file.name, mb: Numbers.decimal(mb, 0), max_mb: Numbers.decimal(maxBytes / (1024 * 1024), 0) }));
      chip.upload = Promise.resolve();
      return chip;
    }
    chip.upload = upload(chip, file);
    return chip;
  }

  // XMLHttpRequest, not fetch: only it tells how much of the file is sent.
  function upload(chip, file) {
    setState(chip, "sending", format(words.sending, { percent: Numbers.percent(0) }));
    return new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      chip.xhr = xhr;
      const body = new FormData();
      body.append("file", file, file.name);
      xhr.open("POST", "/documents");
      xhr.setRequestHeader("X-CSRFToken", csrfToken);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.addEventListener("progress", (event) => {
        if (!event.lengthComputable || chip.state !== "sending") return;
        setState(chip, "sending", format(words.sending, { percent: Numbers.percent(Math.floor((100 * event.loaded) / event.total)) }));
      });
      xhr.addEventListener("load", () => {
        chip.xhr = null;
        let data = {};
        try {
          data = JSON.parse(xhr.responseText);
        } catch (error) {
          // A proxy's page (a 413 from nginx): said in our words below.
        }
        if (xhr.status === 201 && data.document) {
          chip.id = data.document.id;
          chip.element.dataset.documentId = String(chip.id);
          follow(chip, data.document);
        } else {
          refuse(chip, data.error || words.failed);
        }
        resolve();
      });
      xhr.addEventListener("error", () => {
        chip.xhr = null;
        refuse(chip, words.network);
        resolve();
      });
      xhr.addEventListener("abort", () => resolve());
      xhr.send(body);
    });
  }

  // The document's state as the server says it, asked again every second until it is read.
  function follow(chip, stored) {
    if (!chips.has(chip)) return;
    if (stored.state === "ready") {
      setState(chip, "ready", words.ready);
      announce(format(words.attached, { name: chip.name }));
      return;
    }
    if (stored.state === "error") {
      refuse(chip, stored.error || words.failed);
      return;
    }
    if (stored.state === "indexing" && stored.chunks) {
      setState(chip, "indexing", counted(words.indexing, stored.chunks));
    } else {
      setState(chip, stored.state, words.reading);
    }
    chip.timer = window.setTimeout(async () => {
      try {
        const response = await fetch(`/documents/${chip.id}`, { headers: { Accept: "application/json" } });
        const data = await response.json();
        if (!response.ok) return refuse(chip, data.error || words.failed);
        follow(chip, data.document);
      } catch (error) {
        follow(chip, { state: chip.state }); // asked again at the next beat
      }
    }, POLL_MS);
  }

  // ✕: the chip goes, and the file with it (`deleting`: on the server too).
  function discard(chip, deleting) {
    window.clearTimeout(chip.timer);
    if (chip.xhr) chip.xhr.abort();
    chips.delete(chip);
    chip.element.remove();
    showList();
    if (deleting && chip.id) {
      fetch(`/documents/${chip.id}/delete`, { method: "POST", headers: { "X-CSRFToken": csrfToken } }).catch(() => {});
    }
    if (deleting) document.getElementById("prompt").focus();
  }

  // The ids of the files to send with the message, once all are uploaded (their indexing may
  // go on: the answer waits for it); `refused`: the words to show when one could not be sent.
  async function forMessage() {
    await Promise.all([...chips].map((chip) => chip.upload));
    if ([...chips].some((chip) => chip.state === "error")) return { ids: [], refused: words.unusable };
    return { ids: [...chips].map((chip) => chip.id), refused: "" };
  }

  // The message was taken: its files are the question's now, shown on it as links.
  function sent(question) {
    const shown = question.querySelector("[data-attachments]");
    for (const chip of chips) {
      const item = document.getElementById("attachment-link-template").content.firstElementChild.cloneNode(true);
      item.querySelector("a").href = `/documents/${chip.id}/file`;
      item.querySelector("[data-attachment-name]").textContent = chip.name;
      shown.append(item);
      window.clearTimeout(chip.timer);
    }
    shown.classList.toggle("hidden", chips.size === 0);
    chips.clear();
    list.replaceChildren();
    showList();
  }

  function addAll(files) {
    [...files].forEach(add);
  }

  button.addEventListener("click", () => input.click());
  input.addEventListener("change", () => {
    addAll(input.files);
    input.value = ""; // the same file can be picked again after its chip was removed
  });

  // Dragging files over the chat shows where to drop them; dropped anywhere on the page but
  // the chat, the browser must not open them in place of the conversation.
  const carriesFiles = (event) => event.dataTransfer && [...event.dataTransfer.types].includes("Files");
  let depth = 0;
  function showDropZone(visible) {
    dropZone.classList.toggle("hidden", !visible);
    dropZone.classList.toggle("flex", visible);
  }
  chat.addEventListener("dragenter", (event) => {
    if (!carriesFiles(event) || button.disabled) return;
    depth += 1;
    showDropZone(true);
  });
  chat.addEventListener("dragleave", (event) => {
    if (!carriesFiles(event)) return;
    depth = Math.max(0, depth - 1);
    if (!depth) showDropZone(false);
  });
  document.addEventListener("dragover", (event) => {
    if (carriesFiles(event)) event.preventDefault();
  });
  document.addEventListener("drop", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    depth = 0;
    showDropZone(false);
    if (chat.contains(event.target) && !button.disabled) addAll(event.dataTransfer.files);
  });

  return { forMessage, sent };
})();
