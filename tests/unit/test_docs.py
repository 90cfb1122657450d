"""The docs tell the truth about the tree.

- ``docs/layout.md`` names every module of the core (``callcenter/``), and every
  path it names exists;
- every page of ``docs/`` names only modules (``callcenter.actions.inbox``) and
  repository files (``agent_ui/vendor.json``) that exist.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PACKAGES = ("callcenter", "channels", "ivr", "agent_ui")
TOP = (*PACKAGES, "tests", "bench", "scripts", "docs")
MODULE = re.compile(r"`((?:" + "|".join(PACKAGES) + r")(?:\.\w+)+)")
FILE = re.compile(r"`((?:" + "|".join(TOP) + r")/[\w./-]*)`")
FILE_SUFFIXES = frozenset({"toml", "json", "py", "md", "db", "js", "html", "css"})
NAME = re.compile(r"^[A-Za-z0-9_.<>/-]+$")


def layout_entries(text: str) -> list[tuple[str, int]]:
    """(path, line) of each file or folder the layout's tree names."""
    block = text.split("```", 2)[1]
    found: list[tuple[str, int]] = []
    folders: list[tuple[int, str]] = []  # (indent, path) of the folders above
    for number, line in enumerate(block.splitlines(), start=1):
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        names = [n.strip() for n in re.split(r"\s{2,}", line.strip())[0].split(",")]
        if not all(NAME.match(n) and ("." in n or "/" in n) for n in names):
            continue  # a description's second line
        while folders and folders[-1][0] >= indent:
            folders.pop()
        parent = folders[-1][1] if folders else ""
        for name in names:
            path = parent + name
            found.append((path.rstrip("/"), number))
            if name.endswith("/"):
                folders.append((indent, path))
    return found


def core_modules() -> set[str]:
    """Every module of the core but packages' ``__init__`` and the migrations."""
    return {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "callcenter").rglob("*.py")
        if "migrations" not in path.parts
        and (path.name != "__init__.py" or path.parent.name == "callcenter")
    }


def test_the_layout_names_every_module_of_the_core() -> None:
    named = {path for path, _ in layout_entries((DOCS / "layout.md").read_text("utf-8"))}
    assert sorted(core_modules() - named) == []


def test_the_layout_names_only_what_exists() -> None:
    missing = [
        f"line {line}: {path}"
        for path, line in layout_entries((DOCS / "layout.md").read_text("utf-8"))
        if "<" not in path and not (ROOT / path).exists()
    ]
    assert missing == []


def _module_exists(dotted: str) -> bool:
    """``callcenter.a.b`` is a module, or a name in one (``callcenter.a.b.Name``)."""
    parts = dotted.split(".")
    base = ROOT.joinpath(*parts)
    if base.with_suffix(".py").exists() or (base / "__init__.py").exists():
        return True
    parent = ROOT.joinpath(*parts[:-1])
    for source in (parent.with_suffix(".py"), parent / "__init__.py"):
        if source.exists():
            return (
                re.search(
                    rf"^\s*(?:async def|def|class) {parts[-1]}\b|^{parts[-1]}\b",
                    source.read_text("utf-8"),
                    re.M,
                )
                is not None
            )
    return False


def test_every_page_names_only_modules_and_files_that_exist() -> None:
    missing = []
    for page in sorted(DOCS.rglob("*.md")):
        text = page.read_text("utf-8")
        for dotted in MODULE.findall(text):
            if dotted.rpartition(".")[2] in FILE_SUFFIXES:  # a file: callcenter.toml
                continue
            if not _module_exists(dotted):
                missing.append(f"{page.relative_to(ROOT)}: {dotted}")
        for path in FILE.findall(text):
            if not (ROOT / path).exists() and not any(c in path for c in "<*"):
                missing.append(f"{page.relative_to(ROOT)}: {path}")
    assert missing == []


def test_the_layout_reader_reads_a_tree() -> None:
    tree = (
        "```\n"
        "callcenter/        the core\n"
        "  domain/          pure\n"
        "    a.py, b.py       two\n"
        "                     a description's second line\n"
        "  cli.py           the command\n"
        "tests/unit         tests\n"
        "```\n"
    )
    assert [path for path, _ in layout_entries(tree)] == [
        "callcenter",
        "callcenter/domain",
        "callcenter/domain/a.py",
        "callcenter/domain/b.py",
        "callcenter/cli.py",
        "tests/unit",
    ]
