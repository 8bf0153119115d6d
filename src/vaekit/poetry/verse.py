"""Verse rules for five-character poems: level/oblique tones and rhyme finals.

Tones: a table from character to 平 (level) or 仄 (oblique), learned from the corpus's own annotations
(dist/strains/json, matched to poems by id), majority vote per character. A line fits when its 2nd, 4th
and 5th characters follow one of the four basic five-character patterns ("一三不论": the 1st and 3rd are free).

Rhyme: modern pinyin finals from pypinyin with the medial (i, u, ü) dropped, so 'ang'/'iang'/'uang' rhyme.
Tang rhyme followed Middle Chinese (the Pingshui rhyme groups), which modern finals only approximate:
the same approximation is applied to generated poems and to the corpus, and the two shares are compared.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from functools import lru_cache

from vaekit.data.poetry import LINE_CHARS, Poem, poem_lines

__all__ = ["BASIC_PATTERNS", "build_tone_table", "line_fits", "rhyme_final", "rhymes", "lines_of_text"]

LEVEL, OBLIQUE = "平", "仄"
BASIC_PATTERNS = ("仄仄平平仄", "平平仄仄平", "平平平仄仄", "仄仄仄平平")
_CHECKED = (1, 3, 4)  # zero-based positions that must follow the pattern


def build_tone_table(poems: Iterable[Poem], strains: dict[str, list[str]]) -> dict[str, str]:
    """Character -> its majority tone over every annotated occurrence in the corpus."""
    votes: dict[str, Counter] = defaultdict(Counter)
    for poem in poems:
        pattern = strains.get(poem.id)
        if not pattern:
            continue
        text_lines, tone_lines = poem_lines(poem.paragraphs), poem_lines(pattern)
        if len(text_lines) != len(tone_lines):
            continue
        for text, tones in zip(text_lines, tone_lines, strict=True):
            if len(text) != len(tones):
                continue
            for char, tone in zip(text, tones, strict=True):
                if tone in (LEVEL, OBLIQUE):
                    votes[char][tone] += 1
    return {char: count.most_common(1)[0][0] for char, count in votes.items()}


def line_fits(line: str, table: dict[str, str]) -> bool | None:
    """Whether a five-character line fits an allowed level/oblique pattern; None if a checked tone is unknown."""
    if len(line) != LINE_CHARS:
        return False
    tones = [table.get(line[i]) for i in _CHECKED]
    if any(t is None for t in tones):
        return None
    return any(all(p[i] == t for i, t in zip(_CHECKED, tones, strict=True)) for p in BASIC_PATTERNS)


@lru_cache(maxsize=65536)
def rhyme_final(char: str) -> str:
    """The pinyin final of a character without its medial ('iang' -> 'ang'); '' when pypinyin has none."""
    from pypinyin import Style, lazy_pinyin

    final = lazy_pinyin(char, style=Style.FINALS, strict=False, errors=lambda _c: [""])[0]
    final = final.replace("ü", "v")
    if len(final) > 1 and final[0] in "iuv" and final[1] in "aeo":
        final = final[1:]
    return final


def rhymes(a: str, b: str) -> bool:
    """Two characters rhyme when their (medial-free) finals are equal and known."""
    fa, fb = rhyme_final(a), rhyme_final(b)
    return bool(fa) and fa == fb


def lines_of_text(text: str) -> list[str]:
    """Split a punctuation-free poem of a five-character form into its lines."""
    return [text[i:i + LINE_CHARS] for i in range(0, len(text), LINE_CHARS)]
