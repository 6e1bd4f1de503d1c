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
  buttons: [...markdown.querySelectorAll("[data-code-block] > [data-code-header] > button[data-copy-code]")]
    .map((b) => [b.textContent, b.getAttribute("aria-label")]),
})"""
UUID_V4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def tokens(text: str) -> list[str]:
    """The answer cut the way a model streams it: a few characters at a time."""
    pieces = re.findall(r"\n+|[^\S\n]*[^\s]{1,4}|[^\S\n]+", text)
    assert "".join(pieces) == text
    return pieces


@pytest.fixture
def open_page(browser, live_server, logged_in_state):
    """Opens signed-in pages with the given browser options; closes them after the test."""
    contexts = []

    def open_page(
        init_script: str = "", permissions: list[str] | None = None, viewport=DESKTOP, theme: str = "light"
    ):
        context = browser.new_context(
            locale="fr-FR",
            base_url=live_server.base_url,
            viewport=viewport,
            color_scheme=theme,
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


# --- Code headers, table alignment and formulas -----------------------------------------------

SHORT_CODE = "def somme(nombres: list[int]) -> int:\n    return sum(nombres)"
ALIGNED_TABLE = """| Produit | Prix | Stock |
|---|---:|:---:|
| Stylo | 1,50 € | oui |
| Cahier | 12,00 € | non |
"""
FORMULAS = r"""L'énergie au repos vaut $E = mc^2$, et l'aire d'un disque \(A = \pi r^2\).

$$
\int_0^1 x^2\,dx = \frac{1}{3}
$$

Et aussi : \[\sum_{k=1}^{n} k = \frac{n(n+1)}{2}\]
"""
# What the formulas of an answer became: MathML from KaTeX, or not.
MATH = """(markdown) => ({
  // What a formula shows: its <semantics>' first child (the second, unseen, is the TeX source).
  inline: [...markdown.querySelectorAll("[data-math=inline] > math > semantics > :first-child")]
    .map((m) => m.textContent),
  display: [...markdown.querySelectorAll("[data-math=display] > math[display=block]")].map(
    (m) => m.getBoundingClientRect().height > 0),
  math: markdown.querySelectorAll("math").length,
  text: markdown.innerText,
})"""


def last_markdown(page):
    return page.locator(f"{LAST_ANSWER} >> [data-markdown]")


def test_copy_button_sits_above_the_code_and_covers_none_of_it_on_a_phone(open_page, scripted_model):
    page = open_page(viewport=PHONE)
    start_chat(page)
    ask(page, scripted_model, f"Voici :\n\n```python\n{SHORT_CODE}\n```\n")

    block = last_markdown(page).locator("[data-code-block]")
    button, code = block.locator("button[data-copy-code]").bounding_box(), block.locator("pre").bounding_box()
    # The button is above the code, in its header: their boxes do not overlap.
    assert button["y"] + button["height"] <= code["y"], (button, code)
    # What the button used to hide at this width: the end of the first line, shown whole.
    assert "list[int]) -> int:" in block.locator("pre").inner_text()


def test_code_block_header_names_the_language_of_its_fence(open_page, scripted_model):
    page = open_page()
    start_chat(page)
    ask(page, scripted_model, f"```python\n{SHORT_CODE}\n```\n\n```\nsans langue\n```\n")

    headers = last_markdown(page).locator("[data-code-block] > [data-code-header]")
    assert headers.count() == 2
    copy = ui_word(page, "copy")
    assert normalized(headers.nth(0).inner_text()) == f"python {copy}"
    assert normalized(headers.nth(1).inner_text()) == copy  # no label when the fence names none


def test_right_aligned_and_centred_table_columns_keep_their_alignment(open_page, scripted_model):
    page = open_page()
    start_chat(page)
    ask(page, scripted_model, ALIGNED_TABLE)

    table = last_markdown(page).locator("table")
    aligns = table.evaluate(
        "(t) => [...t.rows].map((row) => [...row.cells].map((cell) => getComputedStyle(cell).textAlign))"
    )
    assert aligns == [["start", "right", "center"]] * 3, aligns


@pytest.mark.parametrize("reloaded", [False, True], ids=["streamed", "reloaded"])
def test_inline_and_display_formulas_are_drawn_as_mathml(open_page, scripted_model, reloaded):
    page = open_page()
    start_chat(page)
    ask(page, scripted_model, FORMULAS)
    if reloaded:
        page.reload()
        page.wait_for_selector(f"{LAST_ANSWER} >> [data-markdown][data-rendered]")

    math = last_markdown(page).evaluate(MATH)
    assert [normalized(t) for t in math["inline"]] == ["E=mc2", "A=πr2"], math
    assert math["display"] == [True, True], math
    assert "$" not in math["text"] and "\\(" not in math["text"] and "\\frac" not in math["text"]


def test_money_amounts_stay_text(open_page, scripted_model):
    page = open_page()
    start_chat(page)
    money = (
        "Comptez entre 5 $ et 10 $ par mois.\n\nIt costs $5 and $10.\n\nLe reste : $ 5, et 3$/mois ou 4$/an."
    )
    ask(page, scripted_model, money)

    math = last_markdown(page).evaluate(MATH)
    assert math["math"] == 0, math
    assert normalized(math["text"]) == normalized(money)


def test_formulas_in_code_spans_and_blocks_stay_code(open_page, scripted_model):
    page = open_page()
    start_chat(page)
    ask(
        page,
        scripted_model,
        "En shell, `echo $HOME$x$` affiche :\n\n```latex\n$$E = mc^2$$ et \\(x\\)\n```\n",
    )

    markdown = last_markdown(page)
    assert markdown.locator("math").count() == 0
    assert markdown.locator("p code").inner_text() == "echo $HOME$x$"
    assert markdown.locator("pre code").inner_text().strip() == "$$E = mc^2$$ et \\(x\\)"


def test_a_formula_katex_cannot_read_is_shown_as_written(open_page, scripted_model):
    page = open_page()
    start_chat(page)
    ask(page, scripted_model, "Une fraction mal fermée : $\\frac{1}{2$ puis $x^2$.")

    math = last_markdown(page).evaluate(MATH)
    assert "$\\frac{1}{2$" in math["text"], math
    assert [normalized(t) for t in math["inline"]] == ["x2"]
    assert open_page.dialogs == []


def test_equals_signs_of_an_aligned_formula_line_up_and_matrix_columns_stand_apart(open_page, scripted_model):
    page = open_page()
    start_chat(page)
    answer = r"""$$\begin{aligned} x &= 1 \\ y + 2000 &= 22 \end{aligned}$$

$$\begin{pmatrix} a & b \\ c & d \end{pmatrix}$$
"""
    ask(page, scripted_model, answer)

    markdown = last_markdown(page)
    equals = [m.bounding_box()["x"] for m in markdown.locator("mtable mo", has_text="=").all()]
    assert len(equals) == 2 and abs(equals[0] - equals[1]) < 1, equals
    matrix = markdown.locator("mtable").nth(1)
    a, b = (matrix.locator("mi", has_text=letter).bounding_box() for letter in "ab")
    assert b["x"] - (a["x"] + a["width"]) >= 8, (a, b)  # a column apart, not "ab"


@pytest.mark.parametrize("path", ["/", "/compare"], ids=["chat", "compare"])
def test_every_page_that_shows_answers_draws_their_formulas(open_page, path):
    page = open_page()
    page.goto(path)
    page.wait_for_function("() => window.Markdown !== undefined")
    assert "</math>" in page.evaluate("Markdown.render('Soit $x^2$.')")


LATEX_ATTACKS = r"""Lien : $\href{javascript:alert(1)}{cliquez}$ ; url : $\url{javascript:alert(2)}$.

Classe : $\htmlClass{fixed inset-0}{x}$ ; style : \(\htmlStyle{position:fixed}{y}\).

Id : $\htmlId{prompt}{z}$.

$$\includegraphics{http://127.0.0.1:9/leak.png}$$
"""


def test_formulas_cannot_make_links_classes_styles_or_images(open_page, scripted_model):
    page = open_page()
    start_chat(page)
    ask(page, scripted_model, LATEX_ATTACKS)

    markdown = last_markdown(page)
    # Drawn, each refused command shown by its name (in red) instead of what it asked for.
    assert markdown.locator("math").count() == 6
    found = markdown.evaluate(
        """(m) => [...m.querySelectorAll("*")].flatMap((e) => [
          ...(["A", "IMG", "SCRIPT"].includes(e.tagName.toUpperCase()) ? [e.tagName] : []),
          ...[...e.attributes].map((a) => a.name)
            .filter((n) => ["href", "class", "style", "id", "src"].includes(n) || n.startsWith("on")),
        ])"""
    )
    assert found == []
    assert "javascript:" not in markdown.evaluate(
        "(m) => m.innerHTML.replace(/<annotation[^]*?<\\/annotation>/g, '')"
    )
    assert open_page.dialogs == []


ALL_OF_IT = f"""## Un résumé

{ALIGNED_TABLE}
La formule $E = mc^2$ et son intégrale :

$$\\int_0^1 x^2\\,dx = \\frac{{1}}{{3}}$$

```python
{SHORT_CODE}
```
"""


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_formulas_are_written_in_the_text_colour_of_either_theme(
    open_page, scripted_model, viewport, theme, artifacts_dir
):
    page = open_page(viewport=viewport, theme=theme)
    start_chat(page)
    ask(page, scripted_model, ALL_OF_IT)

    markdown = last_markdown(page)
    colours = markdown.evaluate(
        """(m) => [m.querySelector("p"), ...m.querySelectorAll("math mi")]
          .map((e) => getComputedStyle(e).color)"""
    )
    assert len(colours) > 4 and len(set(colours)) == 1, colours  # formulas as legible as the text
    assert (lightness(colours[0]) > 0.6) == (theme == "dark"), colours
    markdown.locator("table").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts_dir / f"answer-code-table-math-{viewport['width']}-{theme}.png"))


def lightness(css_colour: str) -> float:
    """From 0 (black) to 1 (white): OKLCH's own lightness, or an sRGB colour's luminance."""
    numbers = [float(n) for n in re.findall(r"[\d.]+", css_colour)]
    if css_colour.startswith("oklch"):
        return numbers[0]
    red, green, blue = (n / 255 for n in numbers[:3])
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue
