"""Words as retrieval counts them: folded (case, accents), without the little words of French
and English that every passage has."""

from __future__ import annotations

import math
import re
import unicodedata

STOPWORDS = frozenset(
    """
    a à afin ai aie aient aies ait alors as au aucun aucune aupres auquel aura aurai auraient aurais
    aurait auras aurez auriez aurons auront aussi autre autres aux auxquelles auxquels avaient avais
    avait avant avec avez aviez avions avoir avons ayant c ca car ce ceci cela celle celles celui
    cependant certain certaines certains ces cet cette ceux chacun chaque chez ci comme comment d
    dans de des deja depuis donc dont du elle elles en encore entre est et etaient etais etait etant
    ete etre eu eux faire fait faut il ils j je jusqu l la laquelle le lequel les lesquelles
    lesquels leur leurs lors lorsque lui m ma mais me meme memes mes moi moins mon n ne ni non nos
    notre nous on ont ou par parce pas pendant peu peut peuvent plus pour pourquoi qu quand que quel
    quelle quelles quels qui quoi s sa sans se selon ses si sien soi soit son sont sous suis sur t
    ta te tes toi ton tous tout toute toutes tres tu un une unes uns vers via voici voila vos votre
    vous y quelle est-ce combien dois doit doivent faut-il
    about above after again against all am an and any are aren as at be because been before being
    below between both but by can cannot could did do does doing don down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it its
    itself just let me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them themselves
    then there these they this those through to too under until up very was we were what when where
    which while who whom why will with would you your yours yourself yourselves
    """.split()
)

_WORD = re.compile(r"\w+")


def fold(text: str) -> str:
    """Lower case, accents off: "Sécurité" and "securite" are one word to a search."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def terms(text: str) -> list[str]:
    """The words of `text` a search looks for, folded, each once, in order."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(fold(text)):
        if len(word) > 1 and (word.isdigit() or word not in STOPWORDS):
            seen.setdefault(word[:64], None)
    return list(seen)


def estimate_tokens(text: str) -> int:
    """Tokens a model will read for `text`, estimated without its tokenizer: ~3.6 characters a
    token for French and English prose with today's vocabularies (measured: SmolLM2, Qwen2.5
    and Mistral read 3.3 to 4.1 on the shipped documents)."""
    return math.ceil(len(text) / 3.6) if text else 0
