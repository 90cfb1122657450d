"""The rules of the house that the code's shape must keep (DESIGN.md), read from the source.

- The core knows no adapter: nothing under ``callcenter/`` but the composition
  root (``bootstrap.py``) imports ``channels``, ``ivr`` or ``agent_ui``.
- One write path: no table is written outside ``callcenter/actions/``, except
  the bookkeeping the machinery keeps for itself (the unit of work's statement
  helpers in ``store/``, the job queue's own ``jobs`` table in ``jobs/``).
- The imports of the core run one way (domain <- store <- actions <- api and
  adapters): no cycle, even through a late or a type-checking import.

Every import counts wherever it stands (top level, inside a function, under
``TYPE_CHECKING``): a late import hides a cycle, it does not remove it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from callcenter.store.tables import metadata

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "callcenter"
ADAPTERS = ("channels", "ivr", "agent_ui")
TABLES = frozenset(metadata.tables)
# statement helpers that write (callcenter.store.queries): only actions call them
WRITING_HELPERS = frozenset(
    {"insert_row", "insert_id", "insert_ignore", "update_row", "next_value", "once"}
)
SQL_VERBS = ("insert", "update", "delete")


def sources(*tops: str) -> Iterator[tuple[str, ast.Module]]:
    for top in tops:
        for path in sorted((ROOT / top).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            relative = path.relative_to(ROOT).as_posix()
            yield relative, ast.parse(path.read_text("utf-8"), relative)


def module_name(relative: str) -> str:
    name = relative.removesuffix(".py").replace("/", ".")
    return name.removesuffix(".__init__")


def imported(tree: ast.Module, package: str) -> Iterator[tuple[int, str]]:
    """Every module name an import in ``tree`` names (``package``: the file's own)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            yield node.lineno, base
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"


def test_the_core_imports_no_adapter() -> None:
    found = []
    for relative, tree in sources("callcenter"):
        if relative == "callcenter/bootstrap.py":
            continue
        package = module_name(relative).rpartition(".")[0]
        for line, name in imported(tree, package):
            if name.split(".")[0] in ADAPTERS:
                found.append(f"{relative}:{line} imports {name}")
    assert found == []


def _written_tables(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """(line, what) for every statement in ``tree`` that writes a table."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        first = node.args[0] if node.args else None
        if isinstance(func, ast.Name):
            if func.id in SQL_VERBS and isinstance(first, ast.Name) and first.id in TABLES:
                yield node.lineno, f"{func.id}({first.id})"
            elif func.id in WRITING_HELPERS:
                table = node.args[1] if len(node.args) > 1 else None
                named = table.id if isinstance(table, ast.Name) else ""
                yield node.lineno, f"{func.id}({named})"
            elif (
                func.id == "text"
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
                and first.value.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
            ):
                yield node.lineno, "raw SQL"
        elif isinstance(func, ast.Attribute) and func.attr in SQL_VERBS:
            owner = func.value
            if isinstance(owner, ast.Name) and owner.id in TABLES:
                yield node.lineno, f"{owner.id}.{func.attr}()"
            elif isinstance(first, ast.Name) and first.id in TABLES:
                yield node.lineno, f"{func.attr}({first.id})"


def _allowed(relative: str, what: str) -> bool:
    if relative.startswith("callcenter/actions/"):
        return True
    if relative.startswith("callcenter/store/"):  # the unit of work and its helpers
        return True
    # the job queue keeps its own table: claims, leases, outcomes (jobs/outbox, executor)
    return relative.startswith("callcenter/jobs/") and ("(jobs)" in what or "jobs." in what)


def test_no_table_is_written_outside_the_actions() -> None:
    found = [
        f"{relative}:{line} {what}"
        for relative, tree in sources("callcenter", *ADAPTERS)
        for line, what in _written_tables(tree)
        if not _allowed(relative, what)
    ]
    assert found == []


def test_the_check_sees_a_write() -> None:
    """The two checks above find what they look for (so an empty list means something)."""
    tree = ast.parse(
        "from channels.sms import X\n"
        "async def f(tx):\n"
        "    await tx.execute(update(tickets).values(state='closed'))\n"
        "    await tx.execute(conversations.insert().values())\n"
        "    await insert_row(tx, citizens, {})\n"
        "    await tx.execute(text('DELETE FROM jobs'))\n"
        "    lines.insert(1, 'via')\n"
        "    values.update(a=1)\n"
    )
    assert [what for _, what in sorted(_written_tables(tree))] == [
        "update(tickets)",
        "conversations.insert()",
        "insert_row(citizens)",
        "raw SQL",
    ]
    assert [name for _, name in imported(tree, "callcenter")][:1] == ["channels.sms"]
    assert not _allowed("callcenter/jobs/executor.py", "update(tickets)")
    assert _allowed("callcenter/jobs/executor.py", "update(jobs)")


def test_the_core_imports_run_one_way() -> None:
    modules = {module_name(relative): tree for relative, tree in sources("callcenter")}
    packages = {name for name in modules if (ROOT / name.replace(".", "/")).is_dir()}

    def owner(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, tree in modules.items():
        package = name if name in packages else name.rpartition(".")[0]
        targets = {owner(t) for _, t in imported(tree, package)}
        graph[name] = {t for t in targets if t and t != name}

    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
    assert cycles == []

    lower = {"domain": set(), "store": {"domain"}}  # what each lower layer may import
    for name, targets in graph.items():
        layer = name.split(".")[1] if name.count(".") else ""
        if layer not in lower:
            continue
        for target in targets:
            other = target.split(".")[1] if target.count(".") else target
            allowed = {layer, *lower[layer], "config"}
            assert other in allowed, f"{name} ({layer}) imports {target}"
