// The knowledge bases of a conversation: the settings' checkboxes are the choice; chips above
// the message box show it (✕ takes one away); "#" and a name in the message box suggests bases
// (arrows, Enter or Tab to pick, Esc to leave the text as typed). A change is saved at once in a
// conversation (the settings form, chat.js); a new chat takes it when it starts.
(() => {
  const bar = document.querySelector("[data-collection-bar]");
  const settingsForm = document.querySelector("[data-settings-form]");
  if (!bar || !settingsForm) return;
  const chat = document.getElementById("chat");
  const composer = document.getElementById("composer");
  const prompt = document.getElementById("prompt");
  const chips = bar.querySelector("[data-collection-chips]");
  const list = bar.querySelector("[data-collection-suggestions]");
  const words = JSON.parse(bar.dataset.words);
  const options = [...settingsForm.querySelectorAll("[data-collection-option]")];
  let matches = [];
  let active = 0;

  // Names compared without case or accents: "#qualite" finds "Qualité".
  const folded = (text) => text.normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase();

  function renderChips() {
    chips.replaceChildren();
    for (const option of options.filter((o) => o.checked)) {
      const chip = document.createElement("li");
      chip.className =
        "flex max-w-full items-center gap-1 rounded-full border border-brand-300 bg-brand-50 py-0.5 pl-2.5 pr-1 text-sm text-brand-800 dark:border-brand-800 dark:bg-brand-950 dark:text-brand-200";
      chip.dataset.collectionChip = option.dataset.collectionOption;
      const name = document.createElement("span");
      name.className = "truncate";
      name.textContent = `#${option.dataset.collectionOption}`;
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "rounded-full px-1.5 hover:bg-brand-100 dark:hover:bg-brand-900";
      remove.setAttribute("aria-label", words.remove.replace("{name}", option.dataset.collectionOption));
      remove.textContent = "✕";
      remove.addEventListener("click", () => {
        option.checked = false;
        changed();
        prompt.focus();
      });
      chip.append(name, remove);
      chips.append(chip);
    }
    chips.classList.toggle("hidden", !chips.children.length);
    chips.classList.toggle("flex", Boolean(chips.children.length));
  }

  function changed() {
    renderChips();
    // In a conversation the choice is saved at once (chat.js posts the settings form).
    if (chat.dataset.conversationId) settingsForm.requestSubmit();
  }

  options.forEach((option) => option.addEventListener("change", changed));

  // A preset brings its bases (its other choices are chat.js's).
  const presetSelect = document.querySelector("[data-preset]");
  if (presetSelect) {
    presetSelect.addEventListener("change", () => {
      const ids = (presetSelect.selectedOptions[0].dataset.collections || "").split(",").filter(Boolean);
      options.forEach((option) => {
        option.checked = ids.includes(option.value);
      });
      renderChips();
    });
  }

  // -- "#" in the message box -----------------------------------------------------------------
  function typedTag() {
    const before = prompt.value.slice(0, prompt.selectionStart);
    const found = /(^|\s)#([^\s#]*)$/.exec(before);
    return found ? { start: before.length - found[2].length - 1, query: found[2] } : null;
  }

  function close() {
    matches = [];
    list.replaceChildren();
    list.classList.add("hidden");
    prompt.removeAttribute("aria-activedescendant");
    prompt.setAttribute("aria-expanded", "false");
  }

  function showMatches() {
    list.replaceChildren();
    matches.forEach((option, index) => {
      const item = document.createElement("li");
      item.id = `collection-suggestion-${index}`;
      item.setAttribute("role", "option");
      item.setAttribute("aria-selected", String(index === active));
      item.className = `cursor-pointer truncate rounded px-3 py-1.5 ${index === active ? "bg-brand-100 dark:bg-brand-900" : "hover:bg-slate-100 dark:hover:bg-slate-800"}`;
      item.textContent = `#${option.dataset.collectionOption}`;
      item.dataset.collectionSuggestion = option.dataset.collectionOption;
      // mousedown, not click: the message box keeps the focus (and its caret)
      item.addEventListener("mousedown", (event) => {
        event.preventDefault();
        pick(option);
      });
      list.append(item);
    });
    list.classList.remove("hidden");
    prompt.setAttribute("aria-expanded", "true");
    prompt.setAttribute("aria-activedescendant", `collection-suggestion-${active}`);
  }

  function suggest() {
    const tag = typedTag();
    if (!tag) return close();
    const query = folded(tag.query);
    matches = options.filter((o) => folded(o.dataset.collectionOption).includes(query));
    // Names that start with what was typed come first.
    matches.sort((a, b) => folded(b.dataset.collectionOption).startsWith(query) - folded(a.dataset.collectionOption).startsWith(query));
    if (!matches.length) return close();
    active = 0;
    showMatches();
  }

  // The base picked; "#name" typed for it leaves the message.
  function pick(option) {
    const tag = typedTag();
    if (tag) {
      const end = prompt.selectionStart;
      const rest = prompt.value.slice(end).replace(/^ /, "");
      prompt.value = prompt.value.slice(0, tag.start) + rest;
      prompt.setSelectionRange(tag.start, tag.start);
      prompt.dispatchEvent(new Event("input", { bubbles: true })); // the draft, the box's height
    }
    close();
    if (!option.checked) {
      option.checked = true;
      changed();
    }
  }

  // "#Qualité" followed by a space picks it too, when it is a base's whole name.
  function pickTypedName(event) {
    if (event.inputType !== "insertText" || event.data !== " ") return false;
    const before = prompt.value.slice(0, prompt.selectionStart - 1);
    const found = /(^|\s)#([^\s#]+)$/.exec(before);
    if (!found) return false;
    const option = options.find((o) => folded(o.dataset.collectionOption) === folded(found[2]));
    if (!option) return false;
    const start = before.length - found[2].length - 1;
    prompt.value = prompt.value.slice(0, start) + prompt.value.slice(prompt.selectionStart);
    prompt.setSelectionRange(start, start);
    close();
    if (!option.checked) {
      option.checked = true;
      changed();
    }
    return true;
  }

  prompt.setAttribute("aria-controls", list.id);
  prompt.setAttribute("aria-autocomplete", "list");
  prompt.addEventListener("input", (event) => {
    if (!pickTypedName(event)) suggest();
  });
  prompt.addEventListener("blur", close);
  // Captured at the form, before chat.js's Enter (send) and Esc (stop) on the message box.
  composer.addEventListener(
    "keydown",
    (event) => {
      if (event.target !== prompt || !matches.length || event.isComposing) return;
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        active = (active + (event.key === "ArrowDown" ? 1 : matches.length - 1)) % matches.length;
        showMatches();
      } else if (event.key === "Enter" || event.key === "Tab") {
        pick(matches[active]);
      } else if (event.key === "Escape") {
        close();
      } else {
        return;
      }
      event.preventDefault();
      event.stopPropagation();
    },
    true,
  );
  renderChips();
})();
