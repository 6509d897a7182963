"""Code structure: no import cycle among cancelctl's modules, and the early flags the funnel reads.

Two proofs of "no import cycle": every module imports alone in a fresh
interpreter (a cycle that only lazy imports hold apart breaks some import
order), and the graph of every import statement, function-level ones
included, has no cycle. The first runs each import in a child forked from one
interpreter that has imported the libraries, submodules and all: a module that
reaches a library's submodule it never imports (it works only once another module
has imported it) passes there, so a source check finds those.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import cancelctl
from cancelctl import flags

PACKAGE = Path(cancelctl.__file__).parent


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path) -> set[str]:
    """The cancelctl modules ``name`` imports anywhere in its source (function-level imports too), parents included."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            targets = [base, *(f"{base}.{a.name}" for a in node.names)]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            while target:  # importing a.b.c runs a and a.b first
                if target != name and not name.startswith(target + "."):
                    found.add(target)
                target = target.rpartition(".")[0]
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_import_graph_has_no_cycle():
    graph = {name: imports_of(name, path) for name, path in MODULES.items()}
    assert graph["cancelctl.runner"] >= {"cancelctl.errors", "cancelctl.transport"}  # the walk sees imports
    assert "cancelctl.redact" in graph["cancelctl.credentials"]
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_redact_is_a_leaf():
    assert imports_of("cancelctl.redact", MODULES["cancelctl.redact"]) <= {"cancelctl"}
    assert imports_of("cancelctl.flags", MODULES["cancelctl.flags"]) <= {"cancelctl"}


#: Imported by the parent of :func:`test_every_module_imports_alone_in_a_fresh_interpreter` before it forks: the
#: libraries cancelctl's modules import at their top (never a cancelctl module; the children import those alone).
LIBRARIES = (
    "typer", "httpx", "rich.console", "rich.table", "keyring", "nacl.signing", "base58", "platformdirs",
    "tenacity", "tomli_w",
)  # fmt: skip

IMPORT_EACH = r"""
import importlib, json, os, sys, traceback
for library in sys.argv[2:]:
    importlib.import_module(library)
assert not [m for m in sys.modules if m.partition(".")[0] == "cancelctl"], "a library imported cancelctl"
children = {}
for name in json.loads(sys.argv[1]):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            importlib.import_module(name)
        except BaseException:
            os.write(w, traceback.format_exc()[-500:].encode())
            os._exit(1)
        os._exit(0)
    os.close(w)
    children[name] = (pid, r)
failed = {}
for name, (pid, r) in children.items():
    with os.fdopen(r, "rb") as f:
        err = f.read()
    status = os.waitpid(pid, 0)[1]
    if status:
        failed[name] = err.decode(errors="replace") or f"wait status {status}"
print(json.dumps(failed))
"""


def test_every_module_imports_alone_in_a_fresh_interpreter():
    """Each cancelctl module imported first, with no other cancelctl module loaded before it: in a child forked
    from one interpreter that has imported only the third-party libraries (an interpreter start and typer's, httpx's
    and rich's imports once, not sixty times: that was 8 s of the suite's CPU). An import cycle or a module that
    works only after another one shows up as that module's traceback."""
    proc = subprocess.run(
        [sys.executable, "-c", IMPORT_EACH, json.dumps(sorted(MODULES)), *LIBRARIES],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    failed = json.loads(proc.stdout)
    assert len(MODULES) > 30 and failed == {}


def test_a_module_that_needs_another_first_fails_alone(tmp_path):
    """The check above can fail: two modules in a cycle, where ``a`` imported first reaches ``b`` while ``a`` is
    still half made, and ``b`` reads a name ``a`` has not set yet (``b`` first is fine)."""
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("import pkg.b\nVALUE = 1\n")
    (package / "b.py").write_text("import pkg.a\nUSED = pkg.a.VALUE\n")
    proc = subprocess.run(
        [sys.executable, "-c", IMPORT_EACH, json.dumps(["pkg.a", "pkg.b"])],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    failed = json.loads(proc.stdout)
    assert set(failed) == {"pkg.a"} and "AttributeError" in failed["pkg.a"], failed


def _prefixes(dotted: str) -> set[str]:
    parts = dotted.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1)}


def _chain(node: ast.expr) -> list[str] | None:
    """``a.b.c`` as ``["a", "b", "c"]``; None when it is not rooted at a name."""
    names = []
    while isinstance(node, ast.Attribute):
        names.append(node.attr)
        node = node.value
    return [node.id, *reversed(names)] if isinstance(node, ast.Name) else None


def _is_module(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError, AttributeError):
        return False


def _package_imports(package: str, sub: str) -> bool:
    """Whether ``package``'s own ``__init__`` imports its submodule ``sub`` (so ``package.sub`` is always there)."""
    import importlib

    file = getattr(importlib.import_module(package), "__file__", None)
    if not file or not file.endswith(".py"):
        return True  # built in or frozen: its attributes are not ours to judge
    for n in ast.walk(ast.parse(Path(file).read_text(encoding="utf-8"))):
        if isinstance(n, ast.Import) and any(a.name == f"{package}.{sub}" or a.asname == sub for a in n.names):
            return True
        if isinstance(n, ast.ImportFrom):
            names = {a.name for a in n.names}
            if n.level == 1 and (n.module == sub or (n.module is None and sub in names)):
                return True
            if n.level == 0 and (n.module == f"{package}.{sub}" or (n.module == package and sub in names)):
                return True
    return False


def unimported_submodules(path: Path) -> set[str]:
    """Submodules ``path`` reaches as attributes (``nacl.signing.SigningKey`` after a bare ``import nacl``) without
    importing them anywhere in its source: it works only when something else imported them first. The forked
    import check below cannot see this (its parent has imported the libraries, submodules and all); a fresh
    interpreter per module did."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    bound: dict[str, str] = {}  # a local name -> the module (or attribute) it was imported as
    imported: set[str] = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            for a in n.names:
                imported |= _prefixes(a.name)
                bound[a.asname or a.name.partition(".")[0]] = a.name if a.asname else a.name.partition(".")[0]
        elif isinstance(n, ast.ImportFrom) and n.level == 0 and n.module:
            imported |= _prefixes(n.module)
            for a in n.names:
                imported.add(f"{n.module}.{a.name}")
                bound[a.asname or a.name] = f"{n.module}.{a.name}"
    found = set()
    for n in ast.walk(tree):
        chain = _chain(n) if isinstance(n, ast.Attribute) else None
        if not chain or chain[0] not in bound:
            continue
        module = bound[chain[0]]
        for attr in chain[1:]:
            candidate = f"{module}.{attr}"
            if candidate in imported:
                module = candidate
                continue
            if _is_module(candidate) and not _package_imports(module, attr):
                found.add(candidate)
            break
    return found


def test_no_module_reaches_a_submodule_it_does_not_import():
    offending = {name: sorted(found) for name, path in MODULES.items() if (found := unimported_submodules(path))}
    assert offending == {}


def test_a_module_that_reaches_an_unimported_submodule_is_found(tmp_path):
    """``b`` reaches ``nacl.signing`` after a bare ``import nacl``: alone in a fresh interpreter it fails, but in a
    child of the forked check's parent (which has imported ``nacl.signing``) it passes; the source check finds it."""
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "b.py").write_text("import nacl\nKEY = nacl.signing.SigningKey\n")
    forked = subprocess.run(
        [sys.executable, "-c", IMPORT_EACH, json.dumps(["pkg.b"]), "nacl.signing"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert forked.returncode == 0 and json.loads(forked.stdout) == {}, forked.stderr  # what the forked check misses
    fresh = subprocess.run([sys.executable, "-c", "import pkg.b"], capture_output=True, text=True, timeout=60,
                           cwd=tmp_path)  # fmt: skip
    assert fresh.returncode == 1 and "AttributeError" in fresh.stderr, fresh.stderr
    assert unimported_submodules(package / "b.py") == {"nacl.signing"}
    (package / "b.py").write_text("import nacl.signing\nKEY = nacl.signing.SigningKey\n")
    assert unimported_submodules(package / "b.py") == set()


# -- the early flags ---------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "want"),
    [
        (["cancel", "all", "--json"], flags.EarlyFlags("cancel", json=True)),
        (["--debug", "panic", "--dry-run"], flags.EarlyFlags("panic", dry_run=True, debug=True)),
        (["cancel", "all", "--reason", "--json"], flags.EarlyFlags("cancel", reason="--json")),
        (["cancel", "all", "--reason=drill", "--json"], flags.EarlyFlags("cancel", json=True, reason="drill")),
        (["-p", "main", "orders"], flags.EarlyFlags("orders")),
        (["cancel", "order", "--", "--json"], flags.EarlyFlags("cancel")),
        (["cancel", "all", "--reason"], flags.EarlyFlags("cancel")),
        ([], flags.EarlyFlags()),
    ],
)
def test_early_flags(argv, want):
    assert flags.parse(argv) == want


def test_value_options_are_the_cli_options_that_take_a_value():
    from typer.main import get_command

    from cancelctl.cli import build

    takes_value: set[str] = set()

    def walk(command) -> None:
        for p in command.params:
            if p.param_type_name == "option" and not p.is_flag:
                takes_value.update(p.opts + p.secondary_opts)
        for sub in getattr(command, "commands", {}).values():
            walk(sub)

    walk(get_command(build()))
    assert takes_value == flags.VALUE_OPTIONS


# -- one description per venue ----------------------------------------------


def test_every_venue_description_names_a_working_client():
    from importlib import import_module

    from cancelctl.venues.base import ClientBase
    from cancelctl.venues.info import VENUES

    assert set(VENUES) == {"gemini", "pacifica"}
    for name, info in VENUES.items():
        module, _, cls = info.client.partition(":")
        client = getattr(import_module(module), cls)
        assert issubclass(client, ClientBase) and client.venue == name
        assert callable(import_module(module).validate_cancel)
        assert info.default_environment in info.environments and info.secret_fields
        assert all(url.startswith("https://") and not url.endswith("/") for url in info.environments.values())
        assert info.docs.startswith("https://")
        for ref in (info.secret_check, info.key_check, info.clock_limit, info.profile_check):
            if ref is not None:  # every "module:function" a description names is there
                where, _, function = ref.partition(":")
                assert callable(getattr(import_module(where), function)), ref


def test_an_unknown_venue_is_never_treated_as_another():
    from cancelctl import credentials
    from cancelctl.config import Profile
    from cancelctl.errors import ConfigError
    from cancelctl.transport import Deadline
    from cancelctl.venues.base import open_client, venue_module

    odd = Profile("k", "kraken", "production", base_url_override="https://127.0.0.1")
    with pytest.raises(ConfigError, match="unknown venue 'kraken'"):
        creds = credentials.Credentials({"private_key": "x" * 88})
        open_client(odd, creds, state_dir=Path("/nonexistent"), deadline=Deadline(1))
    with pytest.raises(ConfigError, match="unknown venue"):
        venue_module("kraken")
    with pytest.raises(ConfigError, match="unknown venue"):
        credentials.fields("kraken")


# -- docs/design.md's layout is the package's -----------------------------------


def layout_paths() -> set[str]:
    """The files and folders the Layout block of docs/design.md lists, as paths under cancelctl/."""
    text = (PACKAGE.parent / "docs" / "design.md").read_text(encoding="utf-8")
    block = text.split("## Layout", 1)[1].split("```", 2)[1]
    paths: set[str] = set()
    stack: list[tuple[int, str]] = []
    for line in block.splitlines():
        if not line.strip() or line.strip() == "cancelctl/":
            continue
        indent = len(line) - len(line.lstrip())
        name = line.split()[0]
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = "/".join([*(s for _, s in stack), name.rstrip("/")])
        paths.add(path + ("/" if name.endswith("/") else ""))
        if name.endswith("/"):
            stack.append((indent, name.rstrip("/")))
    return paths


def test_design_layout_lists_every_module_and_nothing_else():
    actual = {p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py")}
    actual |= {p.parent.relative_to(PACKAGE).as_posix() + "/" for p in PACKAGE.rglob("*/__init__.py")}
    listed = layout_paths()
    assert "venues/info.py" in listed and "cli/" in listed  # the parse sees nested entries
    assert listed == actual, (
        f"missing from docs/design.md: {sorted(actual - listed)}; listed but absent: {sorted(listed - actual)}"
    )


def test_the_changelog_releases_the_version_there_is():
    import re

    text = (PACKAGE.parent / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "## [Unreleased]" in text and "keepachangelog.com" in text
    released = re.findall(r"^## \[(\d+\.\d+\.\d+)\] - \d{4}-\d{2}-\d{2}$", text, re.M)
    assert released and released[0] == cancelctl.__version__
