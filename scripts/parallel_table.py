"""Build the parallelism table that the decoder and `verse.check` use, from the corpus's Song regulated poems.

    python scripts/parallel_table.py [--corpus DIR] [--out src/vaekit/poetry/shipped/parallel]

Every middle couplet (頷聯, 頸聯) of the Song dynasty's five- and seven-character regulated poems counts; the Tang
poems, which the shipped models are trained and scored on, take no part, so the Tang held-out poems' parallelism in
docs/benchmarks.md is measured by a table that never saw them. PROVENANCE.json records the source and the counts.
"""

import argparse
import datetime
import json
from pathlib import Path

from vaekit.data.poetry import FORM_CHARS, NPM_PACKAGE, extract_form, load_poems
from vaekit.poetry.parallel import MIN_PAIR_COUNT, TABLE_FILE, build_association, middle_couplets, shipped_table

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", default=None)
    parser.add_argument("--out", default=str(shipped_table().parent))
    args = parser.parse_args()
    poems = load_poems(args.corpus, dynasty="song")
    couplets, counts = [], {}
    for form in ("regulated", "regulated7"):
        texts = extract_form(poems, form)
        counts[form] = len(texts)
        couplets += [pair for text in texts for pair in middle_couplets(text, FORM_CHARS[form])]
    table = build_association(couplets)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table.save(out / TABLE_FILE)
    provenance = {
        "source": f"npm {NPM_PACKAGE}, dist/quantangshi/poet.song.*.json (traditional characters)",
        "what": "PMI of characters at the same place of the two lines of middle couplets (頷聯, 頸聯), both orders",
        "poems": counts, "couplets": len(couplets), "pairs_kept": len(table), "min_pair_count": MIN_PAIR_COUNT,
        "command": "python scripts/parallel_table.py", "date": datetime.date.today().isoformat(),
    }
    (out / "PROVENANCE.json").write_text(json.dumps(provenance, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(provenance, ensure_ascii=False))
