"""Human instrument names and lookup by any part of a name.

A checkpoint names its instruments by id (``gm000_acoustic_grand_piano``: the GM program and a slug, as the
default pack does); people read "Acoustic Grand Piano" with the family ("Keyboard") shown apart.
:func:`display_name` gives the human name of an id (other names, e.g. a user's own instrument, are shown as they
are); :func:`match_instrument` finds an instrument by index, id, human name or an unambiguous part of either.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from ..gm import GM_PROGRAM_NAMES

_GM_ID = re.compile(r"^gm(\d{3})_(.+)$")
_WORD = re.compile(r"[a-z0-9]+")

#: Short names people use for a GM program besides its own (an exact match on one wins over a partial match
#: on another instrument: "grand piano" is the Acoustic Grand Piano, not the Electric Grand Piano).
GM_ALIASES: dict[int, tuple[str, ...]] = {0: ("Grand Piano",)}


def _slug_words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def display_name(name: str) -> str:
    """The human name of instrument ``name``: "Acoustic Grand Piano" for ``gm000_acoustic_grand_piano`` (the GM
    program's name when the id's words are that name's, else the id's words capitalised); any other name as is."""
    m = _GM_ID.match(name)
    if m is None:
        return name
    program, slug = int(m.group(1)), m.group(2)
    if program < len(GM_PROGRAM_NAMES) and _slug_words(GM_PROGRAM_NAMES[program]) == _slug_words(slug):
        return GM_PROGRAM_NAMES[program]
    return " ".join(w.capitalize() for w in _slug_words(slug)) or name


def family_label(family: str | None) -> str:
    """A family as shown beside a name: "synth_lead" -> "Synth lead"; "" for none or "unknown"."""
    if not family or family == "unknown":
        return ""
    text = family.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def _keys(name: str) -> list[list[str]]:
    """The word lists an instrument answers to: its id, its human name, the id without ``gmNNN``, aliases."""
    keys = [_slug_words(name), _slug_words(display_name(name))]
    m = _GM_ID.match(name)
    if m is not None:
        keys.append(_slug_words(m.group(2)))
        keys += [_slug_words(a) for a in GM_ALIASES.get(int(m.group(1)), ())]
    return [k for k in keys if k]


def _runs(key: list[str], n: int):
    return (key[i : i + n] for i in range(len(key) - n + 1))


def _prefixes(query: list[str], words: list[str]) -> bool:
    return all(w.startswith(q) for q, w in zip(query, words, strict=True))


# How a query matches a name's words, best first; the first test that some instrument passes decides. Whole
# words win over parts of words ("harp" is the Orchestral Harp, not the Harpsichord; "flu" the Flute).
_TESTS: tuple[Callable[[list[str], list[str]], bool], ...] = (
    lambda q, k: q == k,  # the name
    lambda q, k: k[: len(q)] == q,  # the name's first words
    lambda q, k: any(run == q for run in _runs(k, len(q))),  # some of its words
    lambda q, k: len(k) >= len(q) and _prefixes(q, k[: len(q)]),  # the starts of its first words
    lambda q, k: any(_prefixes(q, run) for run in _runs(k, len(q))),  # the starts of some of its words
    lambda q, k: " ".join(q) in " ".join(k),  # any part
)


def describe(name: str) -> str:
    """``Acoustic Grand Piano (gm000_acoustic_grand_piano)``; a name that is its own human name alone."""
    human = display_name(name)
    return human if human == name else f"{human} ({name})"


def match_instrument(names: Sequence[str], query: str) -> int:
    """Index of the instrument ``query`` names, among ``names`` (ids or plain names).

    ``query`` is an index ("3"), an exact id ("gm000_acoustic_grand_piano") or, case-insensitively and word by
    word (``_``, ``-`` and spaces alike), the whole or a part of an id or human name: an instrument whose name is
    the query wins over one whose name starts with its words, then one that has its words, then one whose words
    start as the query's do, then any substring ("grand_piano" and "Grand Piano" are the Acoustic Grand Piano, by
    its alias; "acoustic gr" too; "harp" the Orchestral Harp; "flu" the Flute). Raises KeyError naming the
    candidates (with their human names) when the query is unknown or matches several instruments equally well.
    """
    names = list(names)
    query = query.strip()
    if query.isdigit() and int(query) < len(names):
        return int(query)
    if query in names:
        return names.index(query)
    words = _slug_words(query)
    if words:
        keys = [_keys(n) for n in names]
        for test in _TESTS:
            hits = [i for i, ks in enumerate(keys) if any(test(words, k) for k in ks)]
            if len(hits) == 1:
                return hits[0]
            if len(hits) > 1:
                shown = ", ".join(describe(names[i]) for i in hits[:12]) + (" ..." if len(hits) > 12 else "")
                raise KeyError(f"instrument {query!r} is ambiguous: it could be {shown}; say more of the name")
    shown = ", ".join(display_name(n) for n in names[:20]) + (" ..." if len(names) > 20 else "")
    raise KeyError(f"unknown instrument {query!r}; known: {shown} (sing-render --list-instruments lists them all)")
