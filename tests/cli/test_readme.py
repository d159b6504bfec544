"""The README's examples: every Python block is a doctest, and the two commands are right.

pytest runs README.md as a doctest file (``--doctest-glob``), but doctest only
sees ``>>>`` examples: a Python block in any other form would never run. These
tests make sure none escapes that way, that the "Two commands" section
gives the demo command and exactly the test command CI runs, and that "API at
a glance" shows every binding's constructors, methods (sync or async) and
properties as the code has them.
"""

from __future__ import annotations

import ast
import doctest
import importlib
import inspect
import re
from pathlib import Path
from typing import Any, Final

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


# -- "API at a glance" matches the code ---------------------------------------------

_CLASSES: Final = ("TcpServer", "TcpClient", "CastReceiver", "CastSender")
_BINDINGS: Final = ("threaded", "trio", "asyncio")


def subsection(text: str, title: str) -> str:
    """The text of the ``### title`` subsection (up to the next heading of level 2 or 3)."""
    match = re.search(
        rf"^### {re.escape(title)}\n(.*?)(?=^##+ |\Z)", text, re.MULTILINE | re.DOTALL
    )
    assert match, f"README.md has no '### {title}' subsection"
    return match[1]


def _api(title: str) -> str:
    return subsection(section(README.read_text(encoding="utf-8"), "API at a glance"), title)


def _binding_class(binding: str, name: str) -> type:
    module = importlib.import_module(f"jfsocket.bindings.{binding}")
    cls = getattr(module, name)
    assert isinstance(cls, type)
    return cls


def _readme_signatures() -> dict[str, inspect.Signature]:
    """The constructors the README shows, parsed as Python ``def`` headers."""
    found = blocks(_api("Constructors"), "text")
    assert len(found) == 1, "'### Constructors' should hold one text block of signatures"
    # One signature per unindented line; indented lines continue it.
    signatures = {}
    for chunk in re.split(r"\n(?=\S)", found[0].strip()):
        tree = ast.parse(f"def {chunk}: pass")
        func = tree.body[0]
        assert isinstance(func, ast.FunctionDef)
        code = compile(tree, "README.md", "exec")
        namespace: dict[str, Any] = {}
        exec(code, namespace)  # defaults are literals and `1 << 20`: nothing else runs
        signatures[func.name] = inspect.signature(namespace[func.name])
    return signatures


def _public(signature: inspect.Signature) -> list[tuple[str, Any, Any]]:
    return [
        (p.name, p.kind, p.default)
        for p in signature.parameters.values()
        if not p.name.startswith("_")
    ]


@pytest.mark.parametrize("binding", _BINDINGS)
def test_constructors_are_the_code_s(binding: str) -> None:
    """Every constructor argument, its kind and its default are the ones the README shows."""
    readme = _readme_signatures()
    assert sorted(readme) == sorted(_CLASSES)
    for name in _CLASSES:
        code = inspect.signature(_binding_class(binding, name))
        assert _public(readme[name]) == _public(code), f"{binding}.{name}"


def _table_rows(text: str) -> list[list[str]]:
    """The body rows of the Markdown tables in *text*, as lists of stripped cells."""
    lines = text.splitlines()
    rows = []
    for line, after in zip(lines, [*lines[1:], ""], strict=True):
        if line.startswith("| ") and not after.startswith("|---"):  # not a header row
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def _method_table() -> dict[tuple[str, str], tuple[bool, bool]]:
    """``{(class, method): (threaded is async, trio/asyncio are async)}`` from the README."""
    table: dict[tuple[str, str], tuple[bool, bool]] = {}
    for cells in _table_rows(_api("Methods")):
        first, threaded, async_ = cells[0], cells[1], cells[2]
        marks = ("sync", "`await`")
        if not (threaded.startswith(marks) and async_.startswith(marks)):
            continue  # the properties table
        names: list[tuple[str, str]] = []
        if "(every class)" in first:
            method = re.findall(r"`(\w+)\(", first)
            assert len(method) == 1, first
            names = [(cls, method[0]) for cls in _CLASSES]
        else:
            owner = ""
            for cls, method in re.findall(r"`(\w*)\.(\w+)\(", first):
                owner = cls or owner
                names.append((owner, method))
        assert names, f"no method named in {first!r}"
        for key in names:
            assert key not in table, f"{key} twice in the methods table"
            table[key] = (threaded.startswith("`await`"), async_.startswith("`await`"))
    return table


def _public_methods(cls: type) -> set[str]:
    return {
        name
        for name, value in inspect.getmembers(cls)
        if not name.startswith("_") and callable(value) and not isinstance(value, type)
    }


#: The memory binding has the threaded binding's methods and properties (its
#: constructors take ``network=`` and pass the rest on, so they are not compared).
@pytest.mark.parametrize("binding", [*_BINDINGS, "memory"])
def test_methods_table_is_complete_and_says_what_is_async(binding: str) -> None:
    """Each public method is in the table, marked async exactly where the binding's is."""
    table = _method_table()
    for name in _CLASSES:
        cls = _binding_class(binding, name)
        documented = {method for owner, method in table if owner == name}
        assert documented == _public_methods(cls), f"{binding}.{name}"
        for method in documented:
            is_async = inspect.iscoroutinefunction(getattr(cls, method))
            says = table[name, method][0 if binding in ("threaded", "memory") else 1]
            assert says == is_async, f"{binding}.{name}.{method}: README says async={says}"


@pytest.mark.parametrize("binding", [*_BINDINGS, "memory"])
def test_properties_table_is_complete(binding: str) -> None:
    """Each public property is in the table, on exactly the classes that have it."""
    documented: dict[str, set[str]] = {name: set() for name in _CLASSES}
    for cells in _table_rows(_api("Methods")):
        prop = re.fullmatch(r"`(\w+)`", cells[0])
        if prop is None:
            continue
        for owner in re.split(r",\s*", cells[1]):
            documented[owner].add(prop[1])
    for name in _CLASSES:
        cls = _binding_class(binding, name)
        props = {n for n, v in inspect.getmembers(cls) if isinstance(v, property)}
        assert documented[name] == {p for p in props if not p.startswith("_")}, name
