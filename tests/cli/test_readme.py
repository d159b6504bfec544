"""The README's examples: every Python block is a doctest, and the two commands are right.

pytest runs README.md as a doctest file (``--doctest-glob``), but doctest only
sees ``>>>`` examples: a Python block in any other form would never run. These
tests make sure none escapes that way, and that the "Two commands" section
gives the demo command and exactly the test command CI runs.
"""

from __future__ import annotations

import doctest
import re
from pathlib import Path
from typing import Final

import pytest

ROOT: Final = Path(__file__).resolve().parents[2]
README: Final = ROOT / "README.md"
CI_RUN: Final = ROOT / ".ci" / "run"

_FENCE = re.compile(r"^```(?P<lang>[\w-]*)\n(?P<body>.*?)^```\s*$", re.MULTILINE | re.DOTALL)


def blocks(text: str, lang: str) -> list[str]:
    """The bodies of the fenced blocks of *text* marked *lang*, in order."""
    return [m["body"] for m in _FENCE.finditer(text) if m["lang"] == lang]


def section(text: str, title: str) -> str:
    """The text of the ``## title`` section (up to the next ``## `` heading)."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, f"README.md has no '## {title}' section"
    return match[1]


_PYTHON_BLOCKS: Final = blocks(README.read_text(encoding="utf-8"), "python")


def test_readme_has_python_examples() -> None:
    """The README's Python blocks are found (so the per-block checks below check something)."""
    assert len(_PYTHON_BLOCKS) >= 4


@pytest.mark.parametrize(
    "body", _PYTHON_BLOCKS, ids=[f"block{i}" for i in range(1, len(_PYTHON_BLOCKS) + 1)]
)
def test_python_block_is_a_doctest(body: str) -> None:
    """Each Python block is doctest examples only, so the doctest run executes all of it."""
    assert body.startswith(">>> "), f"a Python block not in doctest form:\n{body}"
    parser = doctest.DocTestParser()
    # In the file the closing fence follows the block: it must not be read as expected output.
    parsed = parser.parse(body + "```\n", name="README.md")
    examples = [part for part in parsed if isinstance(part, doctest.Example)]
    assert examples
    assert all("```" not in example.want for example in examples), (
        "the block must end with a blank line, or doctest reads the fence as output"
    )
    # Nothing between the examples is ignored prose: every line is a prompt or an output.
    prose = [p for p in parser.parse(body) if isinstance(p, str) and p.strip()]
    assert prose == [], "text in a Python block that is neither an example nor its output"


def _two_commands() -> list[str]:
    found = blocks(section(README.read_text(encoding="utf-8"), "Two commands"), "sh")
    assert len(found) == 2, f"'## Two commands' should hold two sh blocks, not {len(found)}"
    return [body.strip() for body in found]


def test_first_command_runs_the_demo() -> None:
    """The first command installs the package and ends by running ``jfsocket demo``."""
    first = _two_commands()[0]
    assert "\n" not in first, "one command line"
    assert first.endswith("jfsocket demo"), first


def test_second_command_is_what_ci_runs() -> None:
    """The second command is exactly the last line of ``.ci/run``."""
    second = _two_commands()[1]
    ci_last = CI_RUN.read_text(encoding="utf-8").strip().splitlines()[-1].strip()
    assert second == ci_last
