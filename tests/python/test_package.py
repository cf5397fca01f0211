# SPDX-License-Identifier: MIT
"""The package's shape: a cheap import, layers that import without what they do not need, no import
circles, one version."""
import ast
import os
import subprocess
import sys

import pytest

import openmmmrl

PACKAGE = os.path.dirname(openmmmrl.__file__)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def loaded_after(statement: str) -> set:
    """The top-level modules loaded by a fresh interpreter running `statement`."""
    code = f"import sys; {statement}; print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return set(out.split())


def test_import_is_cheap():
    """`import openmmmrl` loads neither OpenMM nor torch nor h5py; the plugin loads with MRLForce."""
    assert not {"openmm", "torch", "h5py"} & loaded_after("import openmmmrl")
    assert "openmm" in loaded_after("from openmmmrl import MRLForce")


def test_data_layer_needs_no_openmm_or_torch():
    loaded = loaded_after("from openmmmrl.data import Dataset, DatasetWriter, Record, layout; layout()")
    assert "h5py" in loaded and not {"openmm", "torch"} & loaded


def module_imports():
    """{module: set of openmmmrl modules it imports anywhere in its source}, from the installed package.
    `from package import submodule` is an edge to the submodule alone."""
    raw = {}
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            parts = os.path.relpath(path, os.path.dirname(PACKAGE))[:-3].split(os.sep)
            is_package = parts[-1] == "__init__"
            module = ".".join(parts[:-1] if is_package else parts)
            base = module.split(".") if is_package else module.split(".")[:-1]
            imports = []
            for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
                if isinstance(node, ast.Import):
                    imports += [(a.name, []) for a in node.names if a.name.startswith("openmmmrl")]
                elif isinstance(node, ast.ImportFrom):
                    target = node.module or ""
                    if node.level:
                        anchor = base[:len(base) - node.level + 1]
                        target = ".".join(anchor + ([target] if target else []))
                    if target.startswith("openmmmrl"):
                        imports.append((target, [a.name for a in node.names]))
            raw[module] = imports
    graph = {}
    for module, imports in raw.items():
        edges = set()
        for target, names in imports:
            submodules = {f"{target}.{n}" for n in names if f"{target}.{n}" in raw}
            edges |= submodules if submodules and len(submodules) == len(names) else {target} | submodules
        graph[module] = {e for e in edges if e in raw and e != module}
    return graph


def test_no_import_circles():
    graph = module_imports()
    assert "openmmmrl.data.writer" in graph and len(graph) > 10
    state, cycles = {}, []

    def visit(module, stack):
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                cycles.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target, stack + [target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import circles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_one_version():
    """The version comes from pyproject.toml, for Python (package metadata) and C++ (CMake reads it)."""
    text = open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8").read()
    declared = [line.split('"')[1] for line in text.splitlines() if line.startswith("version = ")]
    assert declared == [openmmmrl.__version__]
    assert "project(OpenMMMRL VERSION ${mrl_version}" in open(os.path.join(ROOT, "CMakeLists.txt")).read()


@pytest.mark.parametrize("command", ["mrl-train", "mrl-export", "mrl-evaluate", "mrl-relabel"])
def test_console_commands(command):
    path = os.path.join(os.path.dirname(sys.executable), command)
    result = subprocess.run([path, "--help"], capture_output=True, text=True, encoding="utf-8")
    assert result.returncode == 0 and "usage:" in result.stdout, result.stderr
