"""The package's shape: no import cycle (function-level imports included), and layers that import one way."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def _modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def import_graph() -> dict[str, set[str]]:
    """Module -> the vaekit modules it imports anywhere in its text, each with the packages whose __init__ runs
    first (all but the top-level `vaekit`, the facade every import passes through)."""
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([node.module] if node.module else []))
                subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules]
                targets = subs + ([base] if len(subs) < len(node.names) or base != "vaekit" else [])
            else:
                continue
            for target in targets:
                if target not in modules:
                    continue
                pieces = target.split(".")
                for i in range(2, len(pieces) + 1):  # the packages on the way, then the module
                    step = ".".join(pieces[:i])
                    if step in modules and step != name and not name.startswith(step + "."):
                        graph[name].add(step)
                if target == "vaekit" and name != "vaekit":
                    graph[name].add("vaekit")
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_the_walker_sees_a_cycle_where_there_is_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    graph = import_graph()
    assert "vaekit.tasks" in graph["vaekit.train"] and "vaekit.poetry.decode" in graph["vaekit.tasks"]


def test_no_import_cycle_in_the_package():
    assert cycles(import_graph()) == []


def test_layers_import_one_way():
    graph = import_graph()
    above = {"vaekit.poetry": ("vaekit.tasks", "vaekit.train", "vaekit.serve", "vaekit.cli", "vaekit.plots"),
             "vaekit.models": ("vaekit.poetry", "vaekit.tasks", "vaekit.train", "vaekit.serve", "vaekit.cli"),
             "vaekit.objectives": ("vaekit.models", "vaekit.data", "vaekit.train", "vaekit.cli"),
             "vaekit.math": ("vaekit.",)}
    for layer, forbidden in above.items():
        for module, imports in graph.items():
            if module == layer or module.startswith(layer + "."):
                bad = [m for m in imports if m.startswith(forbidden) and m != module]
                assert not bad, f"{module} imports {bad}, a layer above it"


def test_the_trainer_names_no_model_or_task_and_probes_nothing():
    import re

    text = (SRC / "vaekit" / "train.py").read_text(encoding="utf-8")
    for name in ("gan", "vae", "cvae", "iwae", "autoencoder", "poem", "ImageTask", "PoemTask", "PoemVAE", "GAN",
                 "VAE"):
        assert not re.search(rf"\b{name}\b", text, re.IGNORECASE if name.islower() else 0), name
    assert "hasattr(" not in text and "getattr(self.model" not in text and "getattr(self.task" not in text
    trainer = text[text.index("class Trainer"):]
    assert len(trainer.splitlines()) < 300
