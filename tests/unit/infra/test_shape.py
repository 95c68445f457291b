"""The shape the code holds (issue 18): a module under shared/ or services/ over 300 lines says why
on a ``Size:`` line of its docstring, and no function is over 60 lines (migrations aside). Nothing
is exempt: a module or function that grows past a limit is split into named parts, or (a module)
states why it is not."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 60
SIZE_REASON = re.compile(r"^\s*Size:\s*\S", re.M)


def python_files() -> list[Path]:
    return sorted(
        p
        for top in ("shared", "services")
        for p in (ROOT / top).rglob("*.py")
        if "migrations" not in p.parts
    )


def module_problem(rel: str, text: str) -> str | None:
    lines = len(text.splitlines())
    if lines <= MAX_MODULE_LINES:
        return None
    if SIZE_REASON.search(ast.get_docstring(ast.parse(text)) or ""):
        return None
    return f"{rel}: {lines} lines, over {MAX_MODULE_LINES}, and no 'Size:' line in its docstring"


def function_problems(rel: str, text: str) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        lines = (node.end_lineno or node.lineno) - node.lineno + 1
        if lines > MAX_FUNCTION_LINES:
            out.append(
                f"{rel}::{node.name} (line {node.lineno}): {lines} lines, over {MAX_FUNCTION_LINES}"
            )
    return out


def test_no_long_module_without_a_stated_reason():
    problems = []
    for path in python_files():
        rel = path.relative_to(ROOT).as_posix()
        problem = module_problem(rel, path.read_text(encoding="utf-8"))
        if problem:
            problems.append(problem)
    assert not problems, "split the module or state why at its top ('Size: ...'):\n" + "\n".join(
        problems
    )


def test_no_function_over_60_lines():
    problems = []
    for path in python_files():
        rel = path.relative_to(ROOT).as_posix()
        problems += function_problems(rel, path.read_text(encoding="utf-8"))
    assert not problems, "split these into named steps:\n" + "\n".join(problems)


def test_the_checks_catch_what_they_should():
    body = "\n".join(f"    x{i} = {i}" for i in range(60))
    long_fn = f'"""Doc."""\n\n\ndef f():\n{body}\n'
    assert function_problems("m.py", long_fn) == ["m.py::f (line 4): 61 lines, over 60"]
    filler = "x = 1\n" * 301
    assert module_problem("m.py", f'"""Doc."""\n{filler}')
    reasoned = f'"""Doc.\n\nSize: one table per line, by design."""\n{filler}'
    assert module_problem("m.py", reasoned) is None
    assert module_problem("m.py", '"""Doc."""\n' + "x = 1\n" * 298) is None  # 299 lines
