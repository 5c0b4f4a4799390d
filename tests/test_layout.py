"""The shape of the package: no import cycles, and imports only go the allowed ways.

Every module of the installed tree (the repository root is the ``socius``
package; ``tests/`` is not part of it) is parsed, not imported, and its
imports resolved to modules of ours:

* **cycles** — the graph of all imports (module level, inside functions and
  under ``if TYPE_CHECKING:`` alike: a deferred import is still a mutual
  dependency) has no cycle, except the kernel's one deliberate cycle,
  ``ecs/world.py`` and the modules it drives, which its docstring explains;
* **directions** — every import obeys the layering of the README's layout
  table (below, ``LAYERS``).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIRS = ("ecs", "components", "systems", "llm", "text", "population", "correct", "app", "web", "scenarios",
                "mpi", "bench")

#: top-level part -> the parts of ours it may import (itself always allowed). The application reaches
#: the scenarios and the dashboard (``web``) only by name, through importlib (plug-ins), never by import.
LAYERS = {
    "errors": set(),
    "ecs": set(),
    "text": {"ecs", "errors"},
    "components": {"ecs", "errors", "text"},
    "mpi": {"ecs", "errors"},
    "llm": {"ecs", "errors", "text"},
    "population": {"ecs", "errors", "text", "llm", "components"},
    "systems": {"ecs", "errors", "text", "llm", "components", "population", "mpi"},
    "correct": {"ecs", "errors", "text", "llm", "components", "population", "systems", "mpi"},
    "app": {"ecs", "errors", "text", "llm", "components", "population", "systems", "mpi", "correct"},
    "web": {"ecs", "errors", "text", "llm", "components", "population", "systems", "mpi", "correct", "app"},
    "scenarios": {"ecs", "errors", "text", "llm", "components", "population", "systems", "mpi", "correct", "app",
                  "socius"},
    "bench": {"ecs", "errors", "text", "llm", "components", "population", "systems", "mpi", "correct", "app",
              "web", "scenarios", "socius"},
    "socius": set(),  # the prelude resolves its names lazily, by string
}

#: the kernel's deliberate cycle (explained in ecs/world.py's docstring)
KERNEL_CYCLE = {"socius.ecs.world", "socius.ecs.query", "socius.ecs.system", "socius.ecs.snapshot",
                "socius.ecs.commands", "socius.ecs.digest"}


def _modules() -> dict[str, Path]:
    mods = {"socius": ROOT / "__init__.py", "socius.errors": ROOT / "errors.py"}
    for top in PACKAGE_DIRS:
        for path in sorted((ROOT / top).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts.pop()
            if parts[0] == "scenarios" and len(parts) > 1 and parts[1] == "examples":
                continue  # user-style files run by path, not modules of the package
            mods["socius." + ".".join(parts)] = path
    return mods


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The deepest module of ours that ``name`` (a dotted import target) names."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(module: str) -> list[str]:
    """The modules of ours that ``module`` imports, anywhere in it."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: list[str] = []
    for child in ast.walk(tree):
        if isinstance(child, ast.Import):
            for a in child.names:
                if a.name == "socius" or a.name.startswith("socius."):
                    out.append(_resolve(a.name))
        elif isinstance(child, ast.ImportFrom):
            if child.level:
                base = package.split(".")
                base = base[:len(base) - (child.level - 1)]
                mod = ".".join(base + ([child.module] if child.module else []))
            else:
                mod = child.module or ""
            if mod == "socius" or mod.startswith("socius."):
                out.extend(_resolve(f"{mod}.{a.name}") if f"{mod}.{a.name}" in MODULES else _resolve(mod)
                           for a in child.names)
    return sorted({t for t in out if t and t != module})


GRAPH = {m: _imports(m) for m in MODULES}


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "socius"


def test_every_module_is_seen():
    assert {"socius.ecs.world", "socius.llm", "socius.app.cli", "socius.errors"} <= set(MODULES)
    assert all(_part(m) in LAYERS for m in MODULES), sorted({_part(m) for m in MODULES} - set(LAYERS))


def test_imports_go_the_allowed_ways():
    bad = [f"{m} imports {t}" for m, edges in GRAPH.items() for t in edges
           if _part(t) != _part(m) and _part(t) not in LAYERS[_part(m)]]
    assert not bad, "forbidden imports:\n" + "\n".join(sorted(set(bad)))


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_no_import_cycles_but_the_kernels_explained_one():
    graph = {m: set(edges) for m, edges in GRAPH.items()}
    cycles = [c for c in _cycles(graph) if not set(c) <= KERNEL_CYCLE]
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)
    kernel = [c for c in _cycles(graph) if set(c) <= KERNEL_CYCLE]
    if kernel:
        doc = ast.get_docstring(ast.parse(MODULES["socius.ecs.world"].read_text())) or ""
        assert "cycle" in doc.lower(), "ecs/world.py's docstring must explain the kernel's import cycle"


def test_the_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("name", sorted(__import__("socius").PRELUDE))
def test_prelude_names_resolve(name):
    import socius
    assert getattr(socius, name) is not None
