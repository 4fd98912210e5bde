"""The README's examples run.

Convention (CONTRIBUTING.md): a block fenced as ```python is run here, on its own, in a
fresh namespace and a fresh empty working directory, so it must be self-contained and quick
(under about 2 s); a block that can't run on its own (a cluster, a sensor, a file that
isn't there, a fragment) is fenced as ```py and only shown.
"""

import os
import re

import pytest

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.S | re.M)


def _blocks(text):
    """``(line, language, code)`` for each fenced block, in order."""
    return [(text[:m.start()].count("\n") + 1, m.group(1).strip(), m.group(2))
            for m in FENCE.finditer(text)]


with open(README, encoding="utf-8") as f:
    BLOCKS = _blocks(f.read())
PYTHON = [(line, code) for line, lang, code in BLOCKS if lang == "python"]


def test_fence_parser():
    text = "a\n```python\nx = 1\n```\nb\n```py\ny\n```\n```\nout\n```\n"
    assert _blocks(text) == [(2, "python", "x = 1\n"), (6, "py", "y\n"), (9, "", "out\n")]


def test_readme_has_runnable_examples():
    assert len(PYTHON) >= 5


@pytest.mark.parametrize("line, code", PYTHON, ids=[f"README.md:{line}" for line, _ in PYTHON])
def test_readme_python_block_runs(line, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"README.md:{line}", "exec"), {"__name__": "__readme__"})
