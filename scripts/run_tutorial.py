"""Run the `python` blocks of docs/tutorial.md in order, in one namespace, inside a working folder.

    python scripts/run_tutorial.py [--doc docs/tutorial.md] [--figures docs/tutorial/figures]

The blocks run in a temporary folder (their runs and figures land there); the figures the page shows are then
copied to --figures. The test suite runs the same blocks (tests/test_docs.py). Each block's time is printed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def blocks(doc: Path) -> list[str]:
    """The `python` blocks of a markdown page, in order."""
    return BLOCK.findall(doc.read_text(encoding="utf-8"))


def run_blocks(doc: Path, cwd: Path, say=print) -> dict:  # noqa: ANN001
    """Execute every block of `doc` in one namespace with `cwd` as the working folder; returns the namespace."""
    namespace: dict = {"__name__": "__tutorial__"}
    here = Path.cwd()
    cwd.mkdir(parents=True, exist_ok=True)
    os.chdir(cwd)
    try:
        for i, code in enumerate(blocks(doc), 1):
            start = time.perf_counter()
            exec(compile(code, f"{doc.name}, block {i}", "exec"), namespace)  # noqa: S102 (our own page)
            say(f"block {i}: {time.perf_counter() - start:.1f} s")
    finally:
        os.chdir(here)
    return namespace


def main() -> None:
    root = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--doc", type=Path, default=root / "docs" / "tutorial.md")
    parser.add_argument("--figures", type=Path, default=root / "docs" / "tutorial" / "figures")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run_blocks(args.doc.resolve(), Path(tmp))
        args.figures.mkdir(parents=True, exist_ok=True)
        for figure in sorted((Path(tmp) / "figures").glob("*.png")):
            shutil.copy(figure, args.figures / figure.name)
            print(args.figures / figure.name)


if __name__ == "__main__":
    main()
