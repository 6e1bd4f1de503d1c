"""Whether a question shares a content word with the passage that answers it.

The retrieval suite (suites/documents.toml) must hold questions a keyword search cannot answer by
matching words: "Combien de temps pour signaler une blessure ?" against "…est déclaré … sous 48
heures". This module decides it from the texts, so that no question is called a paraphrase by hand:
words are lowercased and stripped of accents, stopwords (French and English) dropped, and two
words count as shared when they are equal, start with the same 5 letters ("déclaration",
"déclaré"), or one of 4 letters or more begins the other ("fuit", "fuite").
"""

from __future__ import annotations

import re
import unicodedata

# Function words and the auxiliary and modal verbs questions are built with; content words
# (nouns, verbs, adjectives, numbers) are everything else.
FRENCH_STOPWORDS = frozenset(
    """
    a à afin ai aie aient ainsi alors as au aucun aucune aupres auquel aura aurai auront aussi autre
    autres aux auxquels avais avait avant avec avez avoir avons ayant c ca ce ceci cela celle celles
    celui ces cet cette ceux chaque chez ci combien comme comment d dans de des desquels dessous
    dessus deux doit doivent dois donc dont du duquel elle elles en encore entre es est et etaient
    etait etant ete etre eu eux faire fait faut il ils j je jusqu jusque l la laquelle le lequel les
    lesquels leur leurs lors lui m ma mais me meme memes mes moi mon n ne ni non nos notre nous o on
    ont ou par parce pas peu peut peuvent peux plus pour pourquoi pourra pouvez puis puisque qu
    quand que quel quelle quelles quelqu quels qui quoi s sa sans se ses si sien soi soit sommes son
    sont sous suis sur t ta te tes toi ton tous tout toute toutes tres tu un une unes uns vers voici
    voila vos votre vous y
    """.split()
)
ENGLISH_STOPWORDS = frozenset(
    """
    a about above after again against all also am an and any are aren as at be because been before
    being below between both but by can cannot could did do does doing don down during each few for
    from further get gets had has have having he her here hers herself him himself his how i if in
    into is it its itself just let may me might more most must my myself no nor not of off on once
    only or other our ours ourselves out over own per same s shall she should so some such t than
    that the their theirs them themselves then there these they this those through to too under
    until up very was we were what when where which while who whom why will with within would you
    your yours yourself yourselves
    """.split()
)
STOPWORDS = FRENCH_STOPWORDS | ENGLISH_STOPWORDS
_WORD = re.compile(r"[^\W_]+")


def words(text: str) -> list[str]:
    """The text's words, lowercased and without accents: "L'Île" gives ["l", "ile"]."""
    text = unicodedata.normalize("NFKD", text.casefold().replace("œ", "oe").replace("æ", "ae"))
    text = "".join(char for char in text if not unicodedata.combining(char))
    return _WORD.findall(text)


def content_words(text: str) -> set[str]:
    return {word for word in words(text) if word not in STOPWORDS}


def same_stem(one: str, other: str) -> bool:
    if one == other or (len(one) >= 5 and len(other) >= 5 and one[:5] == other[:5]):
        return True
    shorter, longer = sorted((one, other), key=len)
    return len(shorter) >= 4 and longer.startswith(shorter)


def shared_words(question: str, passage: str) -> set[str]:
    """The question's content words that the passage has too (or a word of the same stem)."""
    theirs = content_words(passage)
    return {word for word in content_words(question) if any(same_stem(word, w) for w in theirs)}


def language(text: str) -> str:
    """ "fr" or "en", by which language's function words the text uses more."""
    found = words(text)
    french = sum(word in FRENCH_STOPWORDS - ENGLISH_STOPWORDS for word in found)
    english = sum(word in ENGLISH_STOPWORDS - FRENCH_STOPWORDS for word in found)
    return "en" if english > french else "fr"
