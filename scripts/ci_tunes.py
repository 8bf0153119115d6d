"""Derive the ci tunes (词牌) from the Song ci of the corpus into src/vaekit/poetry/shipped/tunes/tunes.json.

    python scripts/ci_tunes.py [--corpus DIR] [--top 30]

For each of the `--top` most written tunes (the corpus's "失调名", tune unknown, left out): the dominant line
structure (the lengths of the text's pieces between punctuation marks, the most common tuple among the tune's
ci) and its stops; over the ci of that structure, the tone at each place where at least TONE_AGREEMENT of them
agree (a character both level and oblique, or missing from the rhyme book, has no vote), else free (中); and the
rhyme sets: two line ends rhyme when they share a 词林正韵 part in at least RHYME_AGREEMENT of the ci, and the
sets are the connected groups of that relation, each with the tone its ends take. Provenance and rules are
written beside the tunes in the same file.
"""

import argparse
import datetime
import json
from collections import Counter, defaultdict
from pathlib import Path

from vaekit.data.poetry import NPM_PACKAGE, load_ci
from vaekit.poetry.tunes import (
    FREE,
    RHYME_AGREEMENT,
    TONE_AGREEMENT,
    _data_dir,
    ci_lines,
    cilin_parts,
    simplified_tones,
)
from vaekit.poetry.verse import LEVEL, OBLIQUE

UNKNOWN_TUNE = "失调名"


def tone_at(chars: list[str]) -> str:
    votes = Counter()
    for c in chars:
        t = simplified_tones(c)
        if len(t) == 1:
            votes[next(iter(t))] += 1
    total = votes[LEVEL] + votes[OBLIQUE]
    if total and votes[LEVEL] / total >= TONE_AGREEMENT:
        return LEVEL
    if total and votes[OBLIQUE] / total >= TONE_AGREEMENT:
        return OBLIQUE
    return FREE


def rhyme_sets(texts: list[list[str]], n_lines: int) -> list[list[int]]:
    """Connected groups of line ends that share a 词林正韵 part in at least RHYME_AGREEMENT of the ci."""
    parent = list(range(n_lines))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for i in range(n_lines):
        for j in range(i + 1, n_lines):
            known = [(cilin_parts(t[i][-1]), cilin_parts(t[j][-1])) for t in texts]
            known = [(a, b) for a, b in known if a and b]
            if known and sum(bool(a & b) for a, b in known) / len(known) >= RHYME_AGREEMENT:
                parent[root(j)] = root(i)
    groups = defaultdict(list)
    for i in range(n_lines):
        groups[root(i)].append(i)
    return sorted((g for g in groups.values() if len(g) > 1), key=lambda g: g[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", default=None)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    import opencc

    to_traditional = opencc.OpenCC("s2t")
    ci = [c for c in load_ci(args.corpus) if c.tune != UNKNOWN_TUNE]
    by_tune = defaultdict(list)
    for c in ci:
        by_tune[c.tune].append(c)
    out = []
    for name, items in sorted(by_tune.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:args.top]:
        shaped = [ci_lines(c.paragraphs) for c in items]
        shape = Counter(tuple(len(p) for p in texts) for texts, _ in shaped).most_common(1)[0][0]
        chosen = [(texts, stops) for texts, stops in shaped if tuple(len(p) for p in texts) == shape]
        stops = Counter(s for _, s in chosen).most_common(1)[0][0]
        texts = [t for t, _ in chosen]
        tones = ["".join(tone_at([t[i][j] for t in texts]) for j in range(n)) for i, n in enumerate(shape)]
        sets = rhyme_sets(texts, len(shape))
        rhyme_tones = [tone_at([t[i][-1] for t in texts for i in group]) for group in sets]
        names = name.split("・")
        out.append({"name": names[0], "traditional": to_traditional.convert(names[0]),
                    "aliases": sorted({*names[1:], *(to_traditional.convert(n) for n in names[1:]), name,
                                       to_traditional.convert(name)} - {names[0], to_traditional.convert(names[0])}),
                    "lines": list(shape), "stops": stops, "tones": tones, "rhymes": sets, "rhyme_tones": rhyme_tones,
                    "poems": len(chosen), "total": len(items)})
        print(f"{name}: {sum(shape)} characters, {len(shape)} lines, {len(chosen)}/{len(items)} ci, "
              f"rhymes {sets} {rhyme_tones}")
    data = {"source": f"npm {NPM_PACKAGE}, dist/songci/ci.song.*.json (simplified characters), {len(ci):,} ci with a "
                      "named tune",
            "rule": {"shape": "the most common tuple of line lengths (pieces between punctuation marks) of the tune",
                     "tone": f"平 or 仄 where at least {TONE_AGREEMENT:.0%} of the tune's ci of that shape take it "
                             "(characters of one tone only vote), else 中 (free)",
                     "rhyme": f"line ends sharing a 词林正韵 part in at least {RHYME_AGREEMENT:.0%} of those ci, "
                              "grouped by connection; each group's tone by the tone rule over its ends"},
            "command": f"python scripts/ci_tunes.py --top {args.top}", "date": datetime.date.today().isoformat(),
            "tunes": out}
    path = Path(_data_dir()) / "tunes.json"
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(path)


if __name__ == "__main__":
    main()
