"""Answers as the best chat pages show them: Markdown streamed without jumps, coloured code with
a copy button, and copying that works on plain HTTP too; in headless Chromium.

The model is the Ollama stand-in's scripted one, told to say a given answer in small pieces the
way a model streams tokens; the server is the real one.
"""

from __future__ import annotations

import re

import pytest

from tests.browser.pages import new_chat, normalized

pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")

SCRIPTED_MODEL = "deepseek-r1:1.5b"  # the stand-in's scripted model
LAST_ANSWER = "#messages article[data-role=assistant] >> nth=-1"
TIMEOUT_MS = 30_000
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
MAX_LAYOUT_SHIFT = 0.1

PYTHON_CODE = '''def trier(noms: list[str]) -> list[str]:
    """Les noms du plus petit au plus grand, sans tenir compte des majuscules."""
    # sorted() rend une nouvelle liste : l'originale reste intacte
    return sorted(noms, key=lambda nom: nom.casefold())


if __name__ == "__main__":
    for nom in trier(["émile", "Zoé", "adèle"]):
        print(f"Bonjour {nom} !")'''
JS_CODE = """const trier = (noms) => [...noms].sort((a, b) => a.localeCompare(b, "fr"));

// Une copie triée : le tableau d'origine ne bouge pas.
const noms = ["émile", "Zoé", "adèle"];
for (const nom of trier(noms)) {
  console.log(`Bonjour ${nom} !`);
}"""
ANSWER = f"""# Trier une liste de noms

Voici comment trier des noms **sans tenir compte des majuscules**, en Python puis en JavaScript.

## Les étapes

1. Lire la liste des noms.
2. Choisir une clé de tri qui ignore la casse.
3. Afficher le résultat, un nom par ligne.

Points à retenir :

- la liste d'origine n'est pas modifiée ;
- les accents sont pris en compte ;
- le tri est stable.

| Langage | Fonction | Modifie la liste ? |
|---|---|---|
| Python | `sorted()` | non |
| Python | `list.sort()` | oui |
| JavaScript | `Array.prototype.sort()` | oui |

### En Python

```python
{PYTHON_CODE}
```

### En JavaScript

```js
{JS_CODE}
```

Les deux versions renvoient une copie triée : vous pouvez donc réutiliser la liste d'origine
ailleurs dans votre programme sans surprise. Pour de très grandes listes, préférez le tri en
place, qui n'alloue pas de seconde liste.
"""

# Installed before any page script: every layout shift, summed, including those right after an
# input (hadRecentInput): strict on purpose.
RECORD_LAYOUT_SHIFTS = """
window.__layoutShift = 0;
window.__layoutShifts = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    window.__layoutShift += entry.value;
    window.__layoutShifts.push({
      value: entry.value,
      at: Math.round(entry.startTime),
      nodes: (entry.sources || []).map(
        (s) => (s.node ? `${s.node.nodeName} ${(s.node.textContent || "").slice(0, 40)}` : "?")),
    });
  }
}).observe({ type: "layout-shift", buffered: true });
"""
# The plain-HTTP-by-IP case: the browser gives no clipboard API and no randomUUID there. Also
# records what each `copy` event copied (the selection then, in a text box or the document).
WITHOUT_SECURE_CONTEXT_APIS = """
Object.defineProperty(Navigator.prototype, "clipboard", { get: () => undefined, configurable: true });
delete Crypto.prototype.randomUUID;
window.__copied = [];
document.addEventListener("copy", () => {
  const box = document.activeElement;
  window.__copied.push(box && typeof box.selectionStart === "number"
    ? box.value.slice(box.selectionStart, box.selectionEnd)
    : String(window.getSelection()));
}, true);
"""
ANSWER_ENDED = """(count) => {
  const answers = document.querySelectorAll("#messages article[data-role=assistant]");
  const answer = answers[answers.length - 1];
  return answers.length === count && Boolean(answer.dataset.state) && answer.dataset.state !== "generating"
    && !answer.querySelector("[data-markdown]").hasAttribute("data-streaming");
}"""
# What a reader sees of a rendered answer, to compare the streamed one with the reloaded one.
RENDERED = """(markdown) => ({
  text: markdown.innerText.replace(/\\s+/g, " ").trim(),
  blocks: [...markdown.querySelectorAll("h1, h2, h3, p, ol, ul, li, table, th, td, pre")].map(
    (e) => e.tagName),
  code: [...markdown.querySelectorAll("[data-code-block] > pre > code")].map((code) => ({
    language: code.dataset.highlighted || "",
    text: code.textContent,
    coloured: code.querySelectorAll("span[data-hl]").length,
  })),
  buttons: [...markdown.querySelectorAll("[data-code-block] > button[data-copy-code]")].map(
    (b) => [b.textContent, b.getAttribute("aria-label")]),
})"""
UUID_V4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def tokens(text: str) -> list[str]:
    """The answer cut the way a model streams it: a few characters at a time."""
    pieces = re.findall(r"\n+|[^\S\n]*[^\s]{1,4}|[^\S\n]+", text)
    assert "".join(pieces) == text
    return pieces


@pytest.fixture
def scripted_model(standin):
    yield standin
    standin.reset()


@pytest.fixture
def open_page(browser, live_server, logged_in_state):
    """Opens signed-in pages with the given browser options; closes them after the test."""
    contexts = []

    def open_page(init_script: str = "", permissions: list[str] | None = None, viewport=DESKTOP):
        context = browser.new_context(
            locale="fr-FR",
            base_url=live_server.base_url,
            viewport=viewport,
            storage_state=logged_in_state,
            permissions=permissions or [],
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        if init_script:
            context.add_init_script(init_script)
        page = context.new_page()
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        return page

    dialogs: list[str] = []
    open_page.dialogs = dialogs
    yield open_page
    for context in contexts:
        context.close()


def ask(page, model, answer: str, count: int = 1) -> None:
    """Send a message in the open chat and wait for the scripted answer to end."""
    model.script = tokens(answer)
    page.locator("#prompt").fill("Comment trier une liste de noms ?")
    page.locator("#prompt").press("Enter")
    page.wait_for_function(ANSWER_ENDED, arg=count, timeout=TIMEOUT_MS)
    page.wait_for_selector("#send:not(.hidden)")


def start_chat(page) -> None:
    new_chat(page)
    page.locator("#model").select_option(SCRIPTED_MODEL)


def ui_word(page, key: str) -> str:
    return page.evaluate(
        "(key) => JSON.parse(document.querySelector('meta[name=ui-strings]').content)[key]", key
    )


def check_rendered(rendered: dict, copy_word: str, copy_label: str) -> None:
    assert rendered["blocks"].count("H1") == 1 and rendered["blocks"].count("H3") == 2, rendered["blocks"]
    assert rendered["blocks"].count("OL") == 1 and rendered["blocks"].count("UL") == 1, rendered["blocks"]
    assert rendered["blocks"].count("TABLE") == 1 and rendered["blocks"].count("TD") == 9, rendered["blocks"]
    assert [c["text"].rstrip("\n") for c in rendered["code"]] == [PYTHON_CODE, JS_CODE]
    assert [c["language"] for c in rendered["code"]] == ["python", "js"]
    assert all(c["coloured"] >= 10 for c in rendered["code"]), rendered["code"]
    assert rendered["buttons"] == [[copy_word, copy_label]] * 2
    assert "préférez le tri en place" in rendered["text"]


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_streamed_markdown_answer_shows_highlighted_code_with_copy_buttons_without_layout_shift(
    open_page, scripted_model, viewport, artifacts_dir
):
    page = open_page(RECORD_LAYOUT_SHIFTS, viewport=viewport)
    start_chat(page)
    ask(page, scripted_model, ANSWER)
    page.wait_for_timeout(500)  # layout-shift entries are delivered asynchronously

    markdown = page.locator(f"{LAST_ANSWER} >> [data-markdown]")
    check_rendered(markdown.evaluate(RENDERED), ui_word(page, "copy"), ui_word(page, "copy_code"))
    # Each button lies over its block's corner, inside it: it takes no room of its own.
    for block in markdown.locator("[data-code-block]").all():
        box, button = block.bounding_box(), block.locator("button").bounding_box()
        assert block.locator("button").evaluate("b => getComputedStyle(b).position") == "absolute"
        assert box["y"] <= button["y"] and button["x"] + button["width"] <= box["x"] + box["width"] + 1
    markdown.locator("[data-code-block]").first.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts_dir / f"answer-{viewport['width']}.png"))
    shift = page.evaluate("window.__layoutShift")
    shifts = page.evaluate("window.__layoutShifts")
    print(f"\ncumulative layout shift at {viewport['width']}x{viewport['height']}: {shift:.4f}")
    assert shift < MAX_LAYOUT_SHIFT, f"layout shift {shift:.4f} at {viewport}: {shifts}"
    assert open_page.dialogs == []


def test_answer_reloaded_from_history_is_rendered_as_it_was_streamed(open_page, scripted_model):
    page = open_page()
    start_chat(page)
    ask(page, scripted_model, ANSWER)
    streamed = page.locator(f"{LAST_ANSWER} >> [data-markdown]").evaluate(RENDERED)

    page.reload()
    page.wait_for_selector(f"{LAST_ANSWER} >> [data-markdown][data-rendered]")
    reloaded = page.locator(f"{LAST_ANSWER} >> [data-markdown]").evaluate(RENDERED)
    check_rendered(reloaded, ui_word(page, "copy"), ui_word(page, "copy_code"))
    assert reloaded == streamed


def test_copy_button_and_ids_work_without_the_secure_context_apis_of_plain_http(open_page, scripted_model):
    page = open_page(WITHOUT_SECURE_CONTEXT_APIS)
    start_chat(page)
    assert page.evaluate("navigator.clipboard === undefined && crypto.randomUUID === undefined")
    ask(page, scripted_model, ANSWER)  # sending and streaming do not need them

    button = page.locator(f"{LAST_ANSWER} >> button[data-copy-code]").first
    button.click()
    assert button.inner_text() == ui_word(page, "copied")
    assert button.get_attribute("aria-label") == ui_word(page, "copied")
    assert page.evaluate("window.__copied") == [PYTHON_CODE]
    # Focus is back where it was, on the button, and no text box was left behind.
    assert page.evaluate("document.activeElement.matches('button[data-copy-code]')")
    assert page.locator("body > textarea").count() == 0
    page.wait_for_function(
        "(word) => document.querySelector('button[data-copy-code]').textContent === word",
        arg=ui_word(page, "copy"),
        timeout=4_000,
    )

    ids = page.evaluate("[Copying.uuid(), Copying.uuid()]")
    assert all(UUID_V4.match(value) for value in ids) and ids[0] != ids[1], ids

    ask(page, scripted_model, "Encore une réponse.", count=2)
    assert page.locator(LAST_ANSWER).get_attribute("data-state") == "complete"


def test_copy_button_puts_the_code_on_the_clipboard_through_the_clipboard_api(open_page, scripted_model):
    page = open_page(permissions=["clipboard-read", "clipboard-write"])
    start_chat(page)
    assert page.evaluate("typeof navigator.clipboard.writeText") == "function"
    ask(page, scripted_model, ANSWER)

    page.locator(f"{LAST_ANSWER} >> button[data-copy-code]").nth(1).click()
    page.wait_for_function(
        "(word) => document.querySelectorAll('button[data-copy-code]')[1].textContent === word",
        arg=ui_word(page, "copied"),
    )
    assert page.evaluate("navigator.clipboard.readText()") == JS_CODE


def test_copy_button_says_plainly_when_copying_fails_and_selects_the_code(open_page, scripted_model):
    page = open_page(WITHOUT_SECURE_CONTEXT_APIS + "Document.prototype.execCommand = () => false;")
    start_chat(page)
    ask(page, scripted_model, ANSWER)

    button = page.locator(f"{LAST_ANSWER} >> button[data-copy-code]").first
    button.click()
    failed = ui_word(page, "copy_failed")
    assert button.inner_text() == failed and button.get_attribute("aria-label") == failed
    # Selected, ready for the Ctrl+C the message asks for.
    assert page.evaluate("String(window.getSelection())").rstrip("\n") == PYTHON_CODE


XSS_ANSWER = """Du code piégé :

```<img src=x onerror=alert(1)>
nom = "a"
```

```python" onmouseover="alert(2)
x = 1
```

```html
</code><script>alert(3)</script><img src=x onerror=alert(4)>
```

Fin.
"""


def test_markup_in_a_code_fence_language_or_content_is_shown_as_text(open_page, scripted_model):
    page = open_page()
    start_chat(page)
    ask(page, scripted_model, XSS_ANSWER)

    for reloaded in (False, True):
        if reloaded:
            page.reload()
            page.wait_for_selector(f"{LAST_ANSWER} >> [data-markdown][data-rendered]")
        page.wait_for_timeout(300)  # an error event of a stray <img> would have fired by now
        markdown = page.locator(f"{LAST_ANSWER} >> [data-markdown]")
        text = normalized(markdown.inner_text())
        assert "</code><script>alert(3)</script><img src=x onerror=alert(4)>" in text
        assert 'nom = "a"' in text and "Fin." in text
        found = markdown.evaluate(
            """(m) => [...m.querySelectorAll("*")].flatMap((e) => [
              ...(["SCRIPT", "IMG"].includes(e.tagName) ? [e.tagName] : []),
              ...[...e.attributes].map((a) => a.name).filter((n) => n.startsWith("on") || n === "class"),
            ])"""
        )
        assert found == [], f"reloaded={reloaded}: {found}"
        assert markdown.locator("button[data-copy-code]").count() == 3
        assert open_page.dialogs == []
