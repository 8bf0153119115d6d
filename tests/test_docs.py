"""The documentation stays true: the README is a guide, every relative link resolves, the tutorial runs block by
block as written, and docs/benchmarks.md holds only what benchmarks/report.py generates from the results."""

import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _module(path: Path, name: str):  # noqa: ANN202
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_is_a_guide():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 160
    for command in ("make demo", "make test", "vaekit train", "vaekit evaluate", "vaekit sample", "vaekit serve",
                    "vaekit poem write"):
        assert command in text, command


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_resolves(page):
    links = LINK.findall(page.read_text(encoding="utf-8"))
    for target in links:
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue
        path = (page.parent / target.split("#")[0]).resolve()
        assert path.exists(), f"{page.name} links {target}, which does not exist"


def test_every_subject_has_its_page_and_the_readme_links_it():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in ("tutorial", "images", "evaluation", "models", "family", "poems", "web", "library", "scaling",
                 "safety", "architecture", "benchmarks", "history"):
        assert (ROOT / "docs" / f"{name}.md").is_file(), name
        assert f"docs/{name}.md" in readme, name


def test_the_benchmarks_page_is_generated_only(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    report = _module(ROOT / "benchmarks" / "report.py", "vaekit_report_for_test")
    report.main(tmp_path)
    for name in ("benchmarks.md", "family.md"):
        assert (tmp_path / name).read_text() == (ROOT / "docs" / name).read_text(), (
            f"docs/{name} differs from what benchmarks/report.py generates; run it instead of editing the page")
    page = (ROOT / "docs" / "benchmarks.md").read_text()
    assert "[history.md](history.md)" in page and "## What the numbers show" not in page


def test_the_tutorial_runs_as_written(tmp_path, capsys):
    runner = _module(ROOT / "scripts" / "run_tutorial.py", "vaekit_run_tutorial_for_test")
    doc = ROOT / "docs" / "tutorial.md"
    assert len(runner.blocks(doc)) >= 10
    namespace = runner.run_blocks(doc, tmp_path)
    out = capsys.readouterr().out
    assert "0.1386" in out and "rows: ae, vae, cvae" in out
    assert namespace["bounds"][1000] > namespace["bounds"][1]  # log p(x) >= ELBO, seen through the k-sample bound
    for figure in ("kl-check-mark.png", "family.png"):  # the figures the page shows are the ones it draws
        assert (tmp_path / "figures" / figure).stat().st_size > 1000
        assert (ROOT / "docs" / "tutorial" / "figures" / figure).is_file()
    assert sys.modules.get("__tutorial__") is None
