"""The Python side keeps one shape (read from the source, not by importing it):
one package ``onvm``; the product (onvm.cli, onvm.scaler, onvm.nf and the
collection's plugins) imports nothing from the lab, the tests or the
benchmarks; no module imports back into one that imports it; nothing edits
sys.path."""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[2]
PRODUCT = ("onvm.cli", "onvm.scaler", "onvm.nf", "ansible_collections.onvm.nfv")
NOT_PRODUCT = ("onvm.lab", "tests", "bench")
MU = "ansible_collections.onvm.nfv"


def _modules() -> dict[str, Path]:
    """Every first-party module by its import name."""
    found: dict[str, Path] = {}
    for path in (TOP / "src").rglob("*.py"):
        parts = path.relative_to(TOP / "src").with_suffix("").parts
        found[".".join(p for p in parts if p != "__init__") or "onvm"] = path
    for path in (TOP / "collections/onvm/plugins").rglob("*.py"):
        parts = path.relative_to(TOP / "collections/onvm").with_suffix("").parts
        found[".".join((MU, *[p for p in parts if p != "__init__"]))] = path
    for folder in ("tests", "bench"):
        for path in (TOP / folder).rglob("*.py"):
            parts = path.relative_to(TOP).with_suffix("").parts
            found[".".join(p for p in parts if p != "__init__")] = path
    return found


def _imports(name: str, path: Path) -> set[str]:
    """First-party modules ``name`` imports at module level or in functions."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            out.add(base)
            out.update("%s.%s" % (base, a.name) for a in node.names)
    return {m for m in out if m.split(".")[0] in ("onvm", "ansible_collections", "tests", "bench")}


MODULES = _modules()
GRAPH = {
    name: {m for m in _imports(name, path) if m in MODULES and m != name} for name, path in MODULES.items()
}


def _is(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_one_package_and_nothing_left_at_the_old_roots() -> None:
    assert (TOP / "src/onvm/__init__.py").is_file()
    old = [d for d in ("onvm_cli", "onvm_scaler", "onvm_nf", "onvm_lab") if (TOP / d).exists()]
    assert old == []


@pytest.mark.parametrize("name", sorted(n for n in MODULES if _is(n, PRODUCT)))
def test_the_product_imports_no_lab_test_or_bench_code(name: str) -> None:
    bad = sorted(m for m in _imports(name, MODULES[name]) if _is(m, NOT_PRODUCT))
    assert bad == [], "%s imports %s" % (name, bad)


def test_no_import_cycles() -> None:
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(n: str, path: list[str]) -> None:
        state[n] = 1
        for m in sorted(GRAPH[n]):
            if state.get(m) == 1:
                cycles.append([*path[path.index(m) :], m])
            elif m not in state:
                visit(m, [*path, m])
        state[n] = 2

    for n in sorted(GRAPH):
        if n not in state:
            visit(n, [n])
    # a package importing its own submodules is how packages work, not a cycle
    real = [c for c in cycles if not all(_is(x, (c[0],)) or _is(c[0], (x,)) for x in c)]
    assert real == []


def test_nothing_edits_sys_path() -> None:
    hits = []
    for root in ("src", "tests", "bench", "collections/onvm", "molecule", "native", "scripts"):
        for path in (TOP / root).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            if path != Path(__file__).resolve() and ("sys.path.insert" in text or "sys.path.append" in text):
                hits.append(os.path.relpath(path, TOP))
    assert hits == []


# a per-host name built by hand (a format or a template of the host's name)
NAME_BUILT = re.compile(
    r"onvm-%s|/etc/onvm/%s|/etc/onvm/\{\{|onvm-\{\{|\"onvm-\" *\+|'onvm-' *~|ov%s%d|/dev/shm/onvm-%"
    r"|onvm-(mgr|scaler)-%s|\"onvm-%smap_\"|\"%s/onvm-%s"
    r"|\"port%[ud]|startswith\(\"port\"\)|strncmp\(name, \"port\""
)


def test_per_host_names_come_from_one_place() -> None:
    """module_utils/names.py (the filter onvm.nfv.host_names for the roles) and
    its C counterpart onvm_names.h derive every per-host name and hold the one
    rule for port names; nothing else builds or parses one."""
    own = {TOP / "collections/onvm/plugins/module_utils/names.py", TOP / "native/include/onvm/onvm_names.h"}
    hits = []
    for root, suffixes in (
        ("collections/onvm/plugins", (".py",)),
        ("collections/onvm/roles", (".yml",)),
        ("collections/onvm/playbooks", (".yml",)),
        ("src/onvm", (".py",)),
        ("native", (".c", ".h")),
    ):
        for path in (TOP / root).rglob("*"):
            if path.suffix in suffixes and path not in own:
                for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                    if NAME_BUILT.search(line):
                        hits.append("%s:%d: %s" % (os.path.relpath(path, TOP), i, line.strip()))
    assert hits == []


def test_tests_import_nothing_from_the_benchmarks() -> None:
    """What a test and a benchmark share (a soak run, the ring loop) lives in
    onvm.lab; the benchmarks are entry points, not a library."""
    bad = {n: sorted(m for m in GRAPH[n] if _is(m, ("bench",))) for n in GRAPH if _is(n, ("tests",))}
    assert {n: m for n, m in bad.items() if m} == {}
