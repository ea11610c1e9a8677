"""Each energy constant and rule of ``helpers/`` is defined once (docs/methods.md#energy).

Constants appear as number literals only in ``helpers/core/units.py``; the GPU/CPU method strings
(which measurement an energy came from) only in ``helpers/core/rules.py``, so no other module can
pick between an NVML counter and a trapezoid, or between RAPL and an estimate, on its own. Tests
may use the values freely.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "helpers"
UNITS = Path("core") / "units.py"
RULES = Path("core") / "rules.py"

#: name -> the number literals that spell it (a float 12.0: int 12 is also a list index).
CONSTANTS: dict[str, tuple[float, ...]] = {
    "J per kWh": (3.6e6,),
    "RAM W per GB (Green Algorithms)": (0.3725,),
    "carbon intensity g/kWh": (232,),
    "bytes per MiB": (2**20,),
}
#: Strings only the rule module may hold as literals: the methods it chooses between.
METHOD_STRINGS = ("nvml_counter", "trapezoid", "rapl")
#: Functions defined once, in the module named.
RULE_FUNCTIONS = {
    "gpu_energy_rule": RULES, "cpu_energy_rule": RULES, "ram_power_w": RULES,
    "ram_energy_rule": RULES, "mib_to_gb": UNITS,
    "run_window": Path("core") / "windows.py", "training_window": Path("core") / "windows.py",
    "epoch_event_pairs": Path("core") / "windows.py",
}


@cache
def _trees() -> dict[Path, ast.Module]:
    """Every module of the package, parsed once per test session."""
    return {p.relative_to(PACKAGE): ast.parse(p.read_text(encoding="utf-8"))
            for p in sorted(PACKAGE.rglob("*.py"))}


def _numbers(tree: ast.AST) -> list[tuple[float, int]]:
    """(value, line) of every int/float literal, and of every ``a ** b`` of two literals."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            out.append((node.value, node.lineno))
        elif (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow)
              and all(isinstance(x, ast.Constant) for x in (node.left, node.right))):
            out.append((node.left.value ** node.right.value, node.lineno))
    return out


def _strings(tree: ast.AST) -> list[tuple[str, int]]:
    return [(n.value, n.lineno) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str)]


@pytest.mark.parametrize("name", CONSTANTS)
def test_constant_is_a_literal_only_in_units(name: str) -> None:
    values = CONSTANTS[name]
    found = {path: [line for v, line in _numbers(tree) if v in values]
             for path, tree in _trees().items()}
    assert found.pop(UNITS), f"{name} is not defined in helpers/{UNITS}"
    stray = {str(p): lines for p, lines in found.items() if lines}
    assert not stray, f"{name} {values} written outside helpers/{UNITS}: {stray}"


def test_cpu_w_per_core_is_defined_only_in_units() -> None:
    stray = {}
    for path, tree in _trees().items():
        floats = [line for v, line in _numbers(tree) if v == 12.0 and isinstance(v, float)]
        named = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Assign)
                 and isinstance(n.value, ast.Constant)
                 and any("PER_CORE" in ast.unparse(t) for t in n.targets)]
        if (floats or named) and path != UNITS:
            stray[str(path)] = floats + named
    assert not stray, f"W per CPU core set outside helpers/{UNITS}: {stray}"


def test_mib_to_gb_conversion_only_in_units() -> None:
    stray = {}
    for path, tree in _trees().items():
        lines = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.BinOp)
                 and isinstance(n.op, ast.Div) and "2 ** 20" in ast.unparse(n.left)]
        if lines and path != UNITS:
            stray[str(path)] = lines
    assert not stray, f"MiB -> GB written outside helpers/{UNITS}: {stray}"


def test_method_strings_only_in_the_rule_module() -> None:
    stray = {}
    for path, tree in _trees().items():
        lines = [line for s, line in _strings(tree) if s in METHOD_STRINGS]
        models = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.JoinedStr)
                  and "W_per_GB" in ast.unparse(n)]
        if path == RULES:
            assert lines and models, "the rule module lost its method strings"
        elif lines or models:
            stray[str(path)] = lines + models
    assert not stray, f"energy method strings outside helpers/{RULES}: {stray}"


def test_rule_functions_are_defined_once() -> None:
    defined: dict[str, list[str]] = {name: [] for name in RULE_FUNCTIONS}
    for path, tree in _trees().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name in defined:
                defined[node.name].append(str(path))
    assert defined == {name: [str(path)] for name, path in RULE_FUNCTIONS.items()}


def test_the_scan_sees_what_it_looks_for() -> None:
    tree = ast.parse("X = 2**20 / 1e9\nY = 3.6e6\nZ = f'model:{W}W_per_GB'\nM = 'rapl'\n")
    assert (2**20, 1) in _numbers(tree) and (3.6e6, 2) in _numbers(tree)
    assert ("rapl", 4) in _strings(tree)
