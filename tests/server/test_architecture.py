"""The import graph, read from the source (so it runs without importing anything):

* no cycle between modules of the server, counting the imports inside functions too (a lazy import
  that closes a cycle is still a cycle);
* no cycle between modules of the SDK at module level (its facade ``netra`` re-exports its parts, which
  import it back inside functions for a light ``import netra``);
* the SDK never imports the server, except the ``netra`` console script, lazily, to dispatch
  ``netra serve`` when the server is installed;
* no module of the SDK, the instrumentation or the server over 500 lines unless its docstring says
  why (``Long because:``).

An import under ``if TYPE_CHECKING:`` is no edge; ``from pkg import name`` is an edge to ``pkg.name``
when that is a module, else to ``pkg``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"netra_server": ROOT / "server" / "netra_server", "netra": ROOT / "netra"}


def _module_name(package: str, base: Path, path: Path) -> str:
    parts = [package, *path.relative_to(base).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, module: str, is_package: bool, known: set[str], lazy: bool) -> set[str]:
    """The modules of ``known`` that ``module`` imports (also inside functions when ``lazy``)."""
    out: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for sub in child.orelse:
                    visit(sub)
                continue
            if not lazy and isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(child, ast.Import):
                out.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")
                    base = base[: len(base) - (child.level - 1)]
                    target = ".".join([*base, child.module] if child.module else base)
                else:
                    target = child.module or ""
                for alias in child.names:
                    out.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in known else target)
            visit(child)

    visit(tree)
    return {m for m in out if m in known and m != module}


def _graph(lazy: bool) -> dict[str, set[str]]:
    sources: dict[str, tuple[Path, bool]] = {}
    for package, base in PACKAGES.items():
        for path in base.rglob("*.py"):
            sources[_module_name(package, base, path)] = (path, path.name == "__init__.py")
    known = set(sources)
    return {
        name: _imports(ast.parse(path.read_text(encoding="utf-8"), str(path)), name, is_package, known, lazy)
        for name, (path, is_package) in sources.items()
    }


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (the modules in order, the first repeated at the end), or None."""
    color: dict[str, int] = {}
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        color[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if color.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in color:
                found = dfs(nxt)
                if found:
                    return found
        stack.pop()
        color[node] = 2
        return None

    for node in sorted(graph):
        if node not in color:
            found = dfs(node)
            if found:
                return found
    return None


GRAPH = _graph(lazy=False)
LAZY_GRAPH = _graph(lazy=True)


@pytest.mark.parametrize(("package", "lazy"), [("netra_server", True), ("netra", False)])
def test_no_import_cycle(package: str, lazy: bool) -> None:
    graph = LAZY_GRAPH if lazy else GRAPH
    sub = {m: {d for d in deps if d.split(".")[0] == package} for m, deps in graph.items() if m.split(".")[0] == package}
    assert len(sub) > 10, f"found only {len(sub)} modules of {package}: the test reads the wrong folder"
    cycle = _cycle(sub)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or ())


#: The console script dispatches ``netra serve`` & co. to the server when it is installed (lazily).
CONSOLE_SCRIPT = "netra.cli"


def test_sdk_never_imports_the_server() -> None:
    bad = {m: sorted(d for d in deps if d.split(".")[0] == "netra_server") for m, deps in LAZY_GRAPH.items()
           if m.split(".")[0] == "netra" and m != CONSOLE_SCRIPT}
    bad[CONSOLE_SCRIPT] = sorted(d for d in GRAPH[CONSOLE_SCRIPT] if d.split(".")[0] == "netra_server")
    assert not {m: d for m, d in bad.items() if d}, "the SDK imports the server"


def test_the_checker_finds_a_cycle() -> None:
    """The checker itself: a cycle through a relative, a ``from`` and a plain import is found; an
    import under ``if TYPE_CHECKING:`` or (at module level) inside a function is not an edge."""
    src = {
        "p.a": "from . import b\n",
        "p.b": "from p.c import x\n",
        "p.c": "import p.a\n",
        "p.d": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from p import a\ndef f():\n    import p.b\n",
    }
    known = {*src, "p"}

    def graph(lazy: bool) -> dict[str, set[str]]:
        return {m: _imports(ast.parse(s), m, False, known, lazy) for m, s in src.items()}

    assert _cycle(graph(False)) == ["p.a", "p.b", "p.c", "p.a"]
    assert graph(False)["p.d"] == set()
    assert graph(True)["p.d"] == {"p.b"}


# -- the span row: one column list (netra_server.schema.SPAN_COLUMNS) -------------------------------


def _row_names() -> list[str]:
    """The names of the elements of the ``row = [...]`` list that ``otlp._span_row`` serializes."""
    tree = ast.parse((PACKAGES["netra_server"] / "otlp.py").read_text(encoding="utf-8"))
    fn = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "_span_row")
    rows = [n.value for n in ast.walk(fn) if isinstance(n, ast.Assign) and isinstance(n.value, ast.List)
            and any(isinstance(t, ast.Name) and t.id == "row" for t in n.targets)]
    assert len(rows) == 1, "otlp._span_row builds its row as one `row = [...]` list"
    names = []
    for elt in rows[0].elts:
        assert isinstance(elt, ast.Name | ast.Attribute), f"row element {ast.unparse(elt)!r}: name it as its column"
        names.append(elt.id if isinstance(elt, ast.Name) else elt.attr)
    return names


def test_the_receiver_builds_rows_in_the_column_order() -> None:
    from netra_server.schema import SPAN_COLUMNS

    assert tuple(_row_names()) == SPAN_COLUMNS


def test_the_usage_record_names_columns() -> None:
    from netra_server.schema import SPAN_COLUMNS
    from netra_server.usage_extract import SpanUsage

    assert set(SpanUsage._fields) <= set(SPAN_COLUMNS)


def test_the_table_is_built_from_the_column_list() -> None:
    from netra_server.schema import SPAN_COLUMNS, SPANS_DDL

    body = SPANS_DDL.split("(", 1)[1].split("\n) ENGINE", 1)[0]
    declared = [line.split()[0] for line in body.splitlines() if line.strip() and not line.strip().startswith("INDEX")]
    assert tuple(declared) == SPAN_COLUMNS


# -- one definition per shape; small modules ---------------------------------------------------------


def _classes(path: Path) -> dict[str, list[str]]:
    """The classes defined in a module, each with the names of its bases."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name: [ast.unparse(b) for b in node.bases] for node in ast.walk(tree) if isinstance(node, ast.ClassDef)}


def test_the_usage_shapes_are_defined_once() -> None:
    """The usage answers' shapes live in ``netra.usage.wire`` (shared with the client): no pydantic
    model of the server defines one again under its name."""
    shapes = {name for name, bases in _classes(PACKAGES["netra"] / "usage" / "wire.py").items() if "BaseModel" in bases
              or any(b in _classes(PACKAGES["netra"] / "usage" / "wire.py") for b in bases)}
    assert {"TraceSpan", "TraceSummary", "UsageTotals", "CallUsage"} <= shapes
    again = {
        f"{path.relative_to(ROOT)}:{name}"
        for path in PACKAGES["netra_server"].rglob("*.py")
        for name, bases in _classes(path).items()
        if name in shapes and any(b.endswith("BaseModel") for b in bases)
    }
    assert not again, f"defined again in the server: {sorted(again)}"


def test_the_credit_records_are_defined_once() -> None:
    """The ledger answers with the credits client's result types (``netra.credits.models``): the server
    defines none of them again, and the ledger's names are those very classes."""
    from netra_server.credits import ledger

    from netra.credits import models

    records = {name for name, bases in _classes(PACKAGES["netra"] / "credits" / "models.py").items() if "_Read" in bases}
    assert {"Account", "Entry", "Reservation", "Transaction", "UsageGroup", "UsageRecord"} <= records
    again = {
        f"{path.relative_to(ROOT)}:{name}"
        for path in (PACKAGES["netra_server"] / "credits").rglob("*.py")
        for name in _classes(path)
        if name in records
    }
    assert not again, f"defined again in the server: {sorted(again)}"
    assert all(getattr(ledger, name) is getattr(models, name) for name in records if hasattr(ledger, name))


def test_the_credit_error_codes_agree() -> None:
    """Each ``code`` a credit error of the server sends is read by the client into its class of the same
    name (``invalid_request`` stays the plain 400 ``BadRequestError``), and the client maps no other code."""
    from netra_server.credits import errors as server

    from netra.credits import errors as client

    sent = {cls.__name__: cls.code for cls in vars(server).values()
            if isinstance(cls, type) and issubclass(cls, server.CreditError) and not cls.__name__.startswith("_")}
    sent.pop("CreditError")
    assert sent.pop("InvalidCreditRequest") == "invalid_request"
    read = {cls.__name__: code for code, cls in client._BY_CODE.items()}
    assert sent == read


@pytest.mark.parametrize("package", ["store", "api"])
def test_the_split_packages_keep_small_modules(package: str) -> None:
    """The store (by backend and concern) and the query routes (by family) are packages: no module of
    them over 500 lines."""
    sizes = {p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in (PACKAGES["netra_server"] / package).glob("*.py")}
    assert len(sizes) >= 4 and "__init__.py" in sizes
    assert not {name: n for name, n in sizes.items() if n > 500}


#: The phrase a module's docstring starts its reason with when the module is longer than MAX_LINES.
LONG_BECAUSE = "Long because:"
MAX_LINES = 500
SOURCE_DIRS = (ROOT / "netra", ROOT / "instrumentation", ROOT / "server")


def _unexplained_length(text: str) -> int | None:
    """The module's line count if it is over MAX_LINES and its docstring gives no reason, else None."""
    lines = len(text.splitlines())
    if lines <= MAX_LINES:
        return None
    doc = ast.get_docstring(ast.parse(text)) or ""
    return None if LONG_BECAUSE in doc else lines


#: Modules over the limit while work on them is under way, each with what is pending. An entry that is
#: no longer needed fails the test below, so none stays behind.
PENDING: dict[str, str] = {
}


def test_no_long_module_without_a_reason() -> None:
    """A module over 500 lines is split by concern, or says at its top why it is one piece."""
    paths = [p for d in SOURCE_DIRS for p in d.rglob("*.py")]
    assert len(paths) > 50, f"found only {len(paths)} modules: the test reads the wrong folders"
    long = {str(p.relative_to(ROOT)): n for p in paths if (n := _unexplained_length(p.read_text(encoding="utf-8")))}
    stale = set(PENDING) - set(long)
    assert not stale, f"no longer over {MAX_LINES} lines without a reason: remove from PENDING {sorted(stale)}"
    long = {path: n for path, n in long.items() if path not in PENDING}
    assert not long, f"over {MAX_LINES} lines without {LONG_BECAUSE!r} in the docstring (split it, or say why): {long}"


def test_the_length_check_reads_the_docstring() -> None:
    body = "x = 1\n" * MAX_LINES
    assert _unexplained_length(f'"""Short."""\n{body}') == MAX_LINES + 1
    assert _unexplained_length(f'"""Short.\n\n{LONG_BECAUSE} one table."""\n{body}') is None
    # the phrase in a comment or a string further down is no reason
    assert _unexplained_length(f'"""Short."""\n# {LONG_BECAUSE} one table\n{body}') == MAX_LINES + 2
    assert _unexplained_length(f"{body}'{LONG_BECAUSE} x'\n") == MAX_LINES + 1
