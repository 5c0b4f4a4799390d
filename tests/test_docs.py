"""The docs match the code: every Python example runs, every path they name exists.

``README.md``, ``docs/*.md`` and the scenario READMEs are read as a user
reads them: each fenced ``python`` block is executed as written (in a
temporary working directory, with the base install and the test extras), and
every repository path written in backticks (``llm/pipeline.py``,
``app/profile/``) must exist, so a move that forgets the docs fails here.
"""
from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "scenarios").glob("*/README.md"))]
TOP = ("ecs", "components", "systems", "llm", "text", "population", "correct", "app", "web", "scenarios", "mpi", "bench",
       "tests", "docs")
BLOCK = re.compile(r"```python\n(.*?)```", re.S)
PATH = re.compile(r"`((?:%s)/[A-Za-z0-9_./-]*)`" % "|".join(TOP))


def _blocks():
    for page in PAGES:
        for i, m in enumerate(BLOCK.finditer(page.read_text())):
            yield pytest.param(m.group(1), id=f"{page.relative_to(ROOT)}#{i}")


@pytest.mark.parametrize("code", list(_blocks()))
def test_python_examples_run(code, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    module = types.ModuleType("socius_docs_example")  # a real module: dataclasses look their module up
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(code, "<docs>", "exec"), module.__dict__)
    assert set(vars(module)) - {"__name__", "__doc__", "__package__", "__loader__", "__spec__", "__builtins__"}, \
        "the example defined nothing"


def test_pages_are_found():
    assert ROOT / "README.md" in PAGES and len(PAGES) > 5


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_named_paths_exist(page):
    missing = sorted({p for p in PATH.findall(page.read_text())
                      if "*" not in p and "<" not in p and not (ROOT / p).exists()})
    assert not missing, f"{page.relative_to(ROOT)} names paths that do not exist: {missing}"
