"""No code path may evaluate user text: no eval/exec/compile/__import__ anywhere in the
service, and no patsy or formulaic (both evaluate Python inside formula strings)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SERVICE = Path(__file__).resolve().parents[1] / "service"
FORBIDDEN_CALLS = frozenset({"eval", "exec", "compile", "__import__"})
FORBIDDEN_MODULES = frozenset({"patsy", "formulaic"})


def _sources() -> list[Path]:
    return sorted(SERVICE.rglob("*.py"))


BUILTIN_MODULES = frozenset({"builtins", "__builtins__", "importlib"})
#: Methods that evaluate strings whatever object they are on (pandas.eval, DataFrame.eval).
FORBIDDEN_METHODS = frozenset({"eval"})


def _called_name(call: ast.Call) -> str | None:
    """The forbidden builtin a call reaches, if any."""
    func = call.func
    if isinstance(func, ast.Name) and func.id in FORBIDDEN_CALLS:
        return func.id
    if isinstance(func, ast.Attribute):
        # builtins.eval(...), importlib.__import__(...); re.compile(...) is fine
        owner = func.value.id if isinstance(func.value, ast.Name) else None
        if func.attr in FORBIDDEN_CALLS and owner in BUILTIN_MODULES:
            return f"{owner}.{func.attr}"
        if func.attr in FORBIDDEN_METHODS:
            return f".{func.attr}"
    return None


def _violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    found: list[str] = []
    for node in ast.walk(tree):
        where = f"{path.name}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Call) and (name := _called_name(node)):
            found.append(f"{where} calls {name}()")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in FORBIDDEN_MODULES:
                    found.append(f"{where} imports {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] in FORBIDDEN_MODULES:
                found.append(f"{where} imports from {node.module}")
        elif (isinstance(node, ast.Name) and node.id in FORBIDDEN_CALLS
              and id(node) not in called):
            # eval passed around as a value (fn = eval; fn(text)) counts too
            found.append(f"{where} refers to {node.id}")
    return found


def test_service_has_sources() -> None:
    assert len(_sources()) > 5


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(SERVICE)))
def test_no_eval_exec_compile_or_formula_evaluators(path: Path) -> None:
    assert _violations(path) == []


def test_the_scanner_catches_what_it_should(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import patsy\nfrom formulaic import Formula\nimport builtins, pandas\n"
        "eval('1')\nexec('x=1')\ncompile('1', 'f', 'eval')\n__import__('os')\n"
        "builtins.eval('1')\nf = eval\npandas.eval('1 + 1')\n"
    )
    assert len(_violations(bad)) == 9, _violations(bad)


def test_the_scanner_allows_lookalikes(tmp_path: Path) -> None:
    fine = tmp_path / "fine.py"
    fine.write_text("import re\nre.compile('x')\ncursor.execute('SELECT 1')\n"
                    "model.evaluate = 1\nsession.query(x)\n")
    assert _violations(fine) == []
