"""The rules of the house that the code's shape must keep (DESIGN.md), read from the source.

- The core knows no adapter: nothing under ``callcenter/`` but the composition
  root (``bootstrap.py``) imports ``channels``, ``ivr`` or ``agent_ui``
  (``importlib.import_module("...")`` with a literal name counts as an import).
- One write path: no table is written outside ``callcenter/actions/`` (in the core
  or in an adapter), except the bookkeeping the machinery keeps for itself (the
  unit of work's statement helpers in ``store/``, the job queue's own ``jobs``
  table in ``jobs/``). A write is SQLAlchemy's insert, update or delete of a
  table, a writing helper of ``store/queries``, or SQL text that writes, given to
  any call that runs it.
- The imports of the core run one way (domain <- store <- actions <- api and
  adapters): no cycle, even through a late or a type-checking import.

Every import counts wherever it stands (top level, inside a function, under
``TYPE_CHECKING``): a late import hides a cycle, it does not remove it.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Table

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
WRITING_SQL = ("INSERT", "UPDATE", "DELETE", "REPLACE", "UPSERT", "MERGE", "TRUNCATE")
# calls that run a statement given as text: SQLAlchemy's text() and exec_driver_sql(),
# the DB-API's execute(), executemany() and executescript()
RAW_SQL_CALLS = frozenset({"text", "exec_driver_sql", "execute", "executemany", "executescript"})
IMPORTERS = frozenset({"import_module", "__import__"})


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


def _called_name(func: ast.expr) -> str:
    """``f`` for ``f(...)``, ``m.f(...)`` and ``a.b.f(...)`` alike."""
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def imported(tree: ast.Module, package: str) -> Iterator[tuple[int, str]]:
    """Every module name an import in ``tree`` names (``package``: the file's own),
    ``importlib.import_module("name")`` with a literal name among them."""
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
        elif isinstance(node, ast.Call) and _called_name(node.func) in IMPORTERS:
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                yield node.lineno, first.value


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


def _table_named(node: ast.expr | None) -> str | None:
    """The table an expression names: ``tickets`` and ``tables.tickets`` alike."""
    if isinstance(node, ast.Name) and node.id in TABLES:
        return node.id
    if isinstance(node, ast.Attribute) and node.attr in TABLES:
        return node.attr
    return None


def _leading_text(node: ast.expr | None) -> str:
    """The literal text a string argument starts with (an f-string's or a sum's too)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values:
        return _leading_text(node.values[0])
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
        return _leading_text(node.left)
    return ""


def _raw_write(text: str) -> str | None:
    """The table a statement given as text writes ("" when named at run time), or None."""
    words = text.replace("(", " ").split()
    if not words or words[0].upper() not in WRITING_SQL:
        return None
    rest = [w for w in words[1:] if w.upper() not in ("INTO", "FROM", "OR", "IGNORE")]
    return rest[0].strip('"').lower() if rest and rest[0].strip('"') in TABLES else ""


def _written_tables(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """(line, what) for every statement in ``tree`` that writes a table: SQLAlchemy's
    ``insert``/``update``/``delete`` of a table (a function or a method, the table named
    alone or through its module), the store's writing helpers, and SQL given as text to
    any call that runs it (``text``, ``exec_driver_sql``, a DB-API ``execute``...)."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = _called_name(func)
        first = node.args[0] if node.args else None
        if name in SQL_VERBS:
            owner = _table_named(func.value) if isinstance(func, ast.Attribute) else None
            if owner is not None:
                yield node.lineno, f"{owner}.{name}()"
            elif (table := _table_named(first)) is not None:
                yield node.lineno, f"{name}({table})"
        elif name in WRITING_HELPERS:
            table_arg = node.args[1] if len(node.args) > 1 else None
            yield node.lineno, f"{name}({_table_named(table_arg) or ''})"
        elif name in RAW_SQL_CALLS and (written := _raw_write(_leading_text(first))) is not None:
            yield node.lineno, f"raw SQL ({written})"


def _allowed(relative: str, what: str) -> bool:
    if relative.startswith("callcenter/actions/"):
        return True
    if relative.startswith("callcenter/store/"):  # the unit of work and its helpers
        return True
    # the job queue keeps its own table: claims, leases, outcomes (jobs/outbox, executor)
    return relative.startswith("callcenter/jobs/") and (
        what.startswith("jobs.") or what.endswith("(jobs)")
    )


def test_no_table_is_written_outside_the_actions() -> None:
    found = [
        f"{relative}:{line} {what}"
        for relative, tree in sources("callcenter", *ADAPTERS)
        for line, what in _written_tables(tree)
        if not _allowed(relative, what)
    ]
    assert found == []


def _is_table(module: str, name: str) -> bool:
    """Whether ``module.name`` is one of the tables (a module or a function of the same
    name, as ``callcenter.actions.mediations`` beside the ``mediations`` table, is not)."""
    if name not in TABLES:
        return False
    try:
        found = getattr(importlib.import_module(module), name, None)
    except ImportError:
        return False
    return isinstance(found, Table)


def _tables_reached(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """(line, what) for each way ``tree`` reaches a table or the store's row helpers: an
    import of ``callcenter.store.tables`` or ``.queries``, a table imported by name from
    any core module, or a table read as an attribute of an imported core module."""
    store = ("callcenter.store.tables", "callcenter.store.queries")
    modules: dict[str, str] = {}  # a name bound to a core module -> the module
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in store:
                    yield node.lineno, f"import {alias.name}"
                elif alias.name.startswith("callcenter") and alias.asname:
                    modules[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("callcenter"):
            module = node.module or ""
            for alias in node.names:
                if module in store or _is_table(module, alias.name):
                    yield node.lineno, f"from {module} import {alias.name}"
                else:
                    modules[alias.asname or alias.name] = f"{module}.{alias.name}"
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in modules
            and _is_table(modules[node.value.id], node.attr)
        ):
            yield node.lineno, f"{node.value.id}.{node.attr}"


# what may reach the tables: the read side, the write side, and the store and jobs beneath
READ_SIDE = frozenset(
    {
        "callcenter/views.py",
        "callcenter/queueing.py",
        "callcenter/deskviews.py",
        "callcenter/reports.py",
        "callcenter/staffviews.py",
        "callcenter/adminviews.py",
        "callcenter/ops.py",  # the operators' readiness and metrics, counted in SQL
        "callcenter/runtime.py",  # loads the directory (departments, categories, grid) at start
    }
)
BENEATH = ("callcenter/actions/", "callcenter/store/", "callcenter/jobs/")


def test_reads_go_through_the_read_side() -> None:
    """Channels, the IVR, the pages, the API, the command line and the demo read through
    ``views`` and the other read modules (and write through actions): none of them
    reaches a table itself."""
    found = [
        f"{relative}:{line} {what}"
        for relative, tree in sources("callcenter", *ADAPTERS)
        if relative not in READ_SIDE and not relative.startswith(BENEATH)
        for line, what in _tables_reached(tree)
    ]
    assert found == []


def test_the_read_check_sees_a_table() -> None:
    tree = ast.parse(
        "from callcenter.store.tables import messages\n"
        "from callcenter.actions import mediations as med\n"
        "from callcenter.actions.mediations import mediation_parties\n"
        "import callcenter.store.queries\n"
        "from callcenter.views import ticket_view\n"
        "party = med.mediation_parties\n"
        "label = med.tickets_label\n"
    )
    assert [what for _, what in sorted(_tables_reached(tree))] == [
        "from callcenter.store.tables import messages",
        "from callcenter.actions.mediations import mediation_parties",
        "import callcenter.store.queries",
        "med.mediation_parties",
    ]


WRITES = '''
from channels.sms import X
async def f(tx, conn, db, name):
    await tx.execute(update(tickets).values(state='closed'))
    await tx.execute(conversations.insert().values())
    await insert_row(tx, citizens, {})
    await tx.execute(text('DELETE FROM jobs'))
    await tx.execute(tables.messages.update().values(body=''))
    await tx.execute(sa.delete(tables.offers))
    await conn.exec_driver_sql(f'UPDATE {name} SET state = 1')
    db.execute('insert into inbox (body) values (?)', ('x',))
    await tx.execute(text("""
        INSERT OR IGNORE INTO audit_events VALUES (1)"""))
    lines.insert(1, 'via')
    values.update(a=1)
    db.execute('SELECT 1')
    importlib.import_module('agent_ui.app')
'''


def test_the_check_sees_a_write() -> None:
    """The checks above find what they look for (so an empty list means something)."""
    tree = ast.parse(WRITES)
    assert [what for _, what in sorted(_written_tables(tree))] == [
        "update(tickets)",
        "conversations.insert()",
        "insert_row(citizens)",
        "raw SQL (jobs)",
        "messages.update()",
        "delete(offers)",
        "raw SQL ()",
        "raw SQL (inbox)",
        "raw SQL (audit_events)",
    ]
    names = [name for _, name in imported(tree, "callcenter")]
    assert names[0] == "channels.sms"
    assert "agent_ui.app" in names
    assert not _allowed("callcenter/jobs/executor.py", "update(tickets)")
    assert not _allowed("callcenter/jobs/executor.py", "raw SQL ()")
    assert _allowed("callcenter/jobs/executor.py", "update(jobs)")
    assert _allowed("callcenter/jobs/outbox.py", "raw SQL (jobs)")
    assert not _allowed("callcenter/cli.py", "raw SQL (jobs)")
    assert not _allowed("agent_ui/desk.py", "conversations.update()")


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
