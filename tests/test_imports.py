"""Importing mnistbench has no side effects: no matplotlib backend switch, no environment change."""
from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import mnistbench

CHECK = """
import os, matplotlib
matplotlib.use("svg")  # a notebook user's own choice of backend
before_env = dict(os.environ)
import mnistbench, mnistbench.reporting, mnistbench.reporting.plots, mnistbench.reporting.document
import mnistbench.perf.profiling, mnistbench.perf.speed, mnistbench.cli
assert matplotlib.get_backend() == "svg", matplotlib.get_backend()
assert dict(os.environ) == before_env, set(os.environ.items()) ^ set(before_env.items())
print("clean")
"""


def test_importing_the_package_changes_no_backend_and_no_environment():
    env = {k: v for k, v in __import__("os").environ.items() if k != "MPLBACKEND"}
    proc = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0 and "clean" in proc.stdout, proc.stderr


def test_drawing_a_plot_keeps_the_users_backend(tmp_path):
    import matplotlib
    import pandas as pd

    from mnistbench.reporting import plots

    previous = matplotlib.get_backend()
    matplotlib.use("svg")
    try:
        frame = pd.DataFrame({"family": ["mlp"] * 2, "impl": ["manual", "builtin"], "batch_size": [64, 64],
                              "train_samples_per_s": [1000.0, 900.0]})
        path = plots.plot_throughput(frame, tmp_path / "t.png")
        assert path.is_file() and path.stat().st_size > 1000
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(previous)


# ---------------------------------------------------------------- no import cycles
# Module-level imports only: an import inside a function runs later, once every module is loaded.
# Importing a.b.c from outside package a.b also runs a/b/__init__.py, so that counts as an edge too.
PACKAGE = pathlib.Path(mnistbench.__file__).parent
KNOWN_CYCLES = set()  # frozensets of module names; each must still exist (the test says when one is gone)


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _module_level_imports(tree: ast.Module):
    """Import nodes outside functions (at module level, or under if/try/with/class at module level)."""
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            stack.extend(ast.iter_child_nodes(node))


def import_graph() -> dict:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in _module_level_imports(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
                continue
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            targets.add(base)
            targets.update(f"{base}.{alias.name}" for alias in node.names)  # a submodule, if it is one
        edges = set()
        for target in targets:
            parts = target.split(".")
            for i in range(2, len(parts) + 1):  # the packages on the way run their __init__ first
                prefix = ".".join(parts[:i])
                if prefix in modules and not (name + ".").startswith(prefix + ".") and prefix != name:
                    edges.add(prefix)
        graph[name] = edges
    return graph


def import_cycles(graph: dict) -> set:
    """Each cycle found by a depth-first search, as the frozenset of its modules."""
    cycles, state = set(), {}  # state: 1 on the current path, 2 done

    def visit(node, path):
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.add(frozenset(path[path.index(nxt):]))
            elif nxt not in state:
                visit(nxt, path)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    return cycles


def test_the_cycle_finder_sees_a_cycle_and_ignores_a_tree():
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == {frozenset("abc")}
    assert import_cycles({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == set()


def test_no_import_cycle_among_mnistbench_modules():
    cycles = import_cycles(import_graph())
    assert cycles - KNOWN_CYCLES == set(), [sorted(c) for c in cycles - KNOWN_CYCLES]
    assert KNOWN_CYCLES - cycles == set(), f"gone, drop from KNOWN_CYCLES: {KNOWN_CYCLES - cycles}"
