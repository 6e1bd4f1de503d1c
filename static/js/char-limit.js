// Long text boxes with a limit (a message, a system prompt): the length is shown from 90 % of the
// limit and marked past it, and sending over it is refused with a message. Nothing is ever cut:
// these boxes have no maxlength, so a long paste stays whole and the writer chooses what to leave.
//
// Any <textarea data-max-chars="N" data-chars-text="… {count} / {max} …" data-too-long-text="…">
// takes part (the texts come from the `char_limit` macro, in the page's language). Its counter is
// the element with id "<box id>-count", made under the box when the page has none; the refusal
// goes to the element named by data-chars-error, else to one made under the counter.
"use strict";

window.CharLimit = (() => {
  const numberFormat = new Intl.NumberFormat(document.documentElement.lang || undefined);
  const number = (value) => numberFormat.format(value);
  const format = (template, values) => template.replace(/\{(\w+)\}/g, (_, key) => values[key]);

  // Counted as the server counts it: characters, not UTF-16 units, once trimmed.
  function count(text) {
    return [...text.trim()].length;
  }

  function limit(box) {
    return Number(box.dataset.maxChars);
  }

  // The message refusing the box's text, or "" when it fits.
  function refusal(box) {
    const length = count(box.value);
    if (length <= limit(box)) return "";
    return format(box.dataset.tooLongText, { count: number(length), max: number(limit(box)) });
  }

  function made(box, id, classes, after) {
    const element = document.createElement("p");
    element.id = id;
    element.className = classes;
    after.after(element);
    return element;
  }

  function counterOf(box) {
    return (
      document.getElementById(`${box.id}-count`) ||
      made(
        box,
        `${box.id}-count`,
        "mt-1 hidden text-right text-xs tabular-nums text-slate-500 data-[over]:font-medium data-[over]:text-red-600 dark:text-slate-400 dark:data-[over]:text-red-400",
        box,
      )
    );
  }

  function errorOf(box) {
    const named = box.dataset.charsError || `${box.id}-chars-error`;
    const found = document.getElementById(named);
    if (found) return found;
    const error = made(box, named, "mt-1 hidden text-sm text-red-600 dark:text-red-400", counterOf(box));
    error.setAttribute("role", "alert");
    return error;
  }

  function showError(box, text) {
    const error = errorOf(box);
    error.textContent = text;
    error.classList.toggle("hidden", !text);
  }

  // Recount: after typing, and after a script changed the box's text (input events do not fire).
  function update(box) {
    const counter = counterOf(box);
    const length = count(box.value);
    counter.classList.toggle("hidden", length < limit(box) * 0.9);
    counter.toggleAttribute("data-over", length > limit(box));
    counter.textContent = format(box.dataset.charsText, { count: number(length), max: number(limit(box)) });
    if (length <= limit(box) && box.getAttribute("aria-invalid") === "true") {
      box.removeAttribute("aria-invalid");
      showError(box, "");
    }
  }

  function attach(box) {
    if (box.dataset.charLimitReady) return;
    box.dataset.charLimitReady = "1";
    const counter = counterOf(box);
    const described = (box.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
    if (!described.includes(counter.id)) box.setAttribute("aria-describedby", [...described, counter.id].join(" "));
    box.addEventListener("input", () => update(box));
    update(box); // a long text kept from before
  }

  document.querySelectorAll("textarea[data-max-chars]").forEach(attach);

  // Sending over the limit is refused before any page script sends it (capture, on the document),
  // whether the form posts itself or a script sends its text: the text stays whole in the box.
  document.addEventListener(
    "submit",
    (event) => {
      const boxes = [...event.target.querySelectorAll("textarea[data-max-chars]")];
      const over = boxes.find((box) => refusal(box));
      if (!over) return;
      event.preventDefault();
      event.stopImmediatePropagation();
      update(over);
      showError(over, refusal(over));
      over.setAttribute("aria-invalid", "true");
      over.focus();
    },
    true,
  );

  return { count, refusal, update, attach };
})();
