// Numbers as the page's language writes them ("3,3" in French, "3.3" in English): the twin of
// app/formatting.py for what the scripts show, read from <html lang> like the server's pages.
"use strict";

window.Numbers = (() => {
  const lang = document.documentElement.lang || "fr";
  const formats = new Map();

  // `value` with exactly `digits` decimals and the language's separators.
  function decimal(value, digits = 1) {
    if (!formats.has(digits)) {
      formats.set(digits, new Intl.NumberFormat(lang, { minimumFractionDigits: digits, maximumFractionDigits: digits }));
    }
    return formats.get(digits).format(value);
  }

  // A share given in percent (0–100), as the language writes it: "33 %" or "33%".
  function percent(value) {
    if (!formats.has("%")) formats.set("%", new Intl.NumberFormat(lang, { style: "percent", maximumFractionDigits: 0 }));
    return formats.get("%").format(value / 100);
  }

  return { decimal, percent };
})();
