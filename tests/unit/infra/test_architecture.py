"""The shape the project holds (DESIGN.md): services import only ``shared`` and themselves; no
module over 300 lines without a reason stated at its top; no function over 60 lines (migrations
aside); object keys are written only by ``shared/layout.py``."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SERVICES = sorted(p.name for p in (ROOT / "services").iterdir() if (p / "__init__.py").exists())
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 60
LONG_MODULE_REASON = re.compile(r"^(?:#|\"\"\"|.*)\s*(?:Over|Longer than) 300 lines", re.I | re.M)


def python_files(*tops: str) -> list[Path]:
    return sorted(
        p for top in tops for p in (ROOT / top).rglob("*.py") if "migrations" not in p.parts
    )


def imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_imports_only_shared_and_itself(service):
    wrong = []
    for path in python_files(f"services/{service}"):
        for mod in imported_modules(path):
            parts = mod.split(".")
            if parts[0] == "services" and len(parts) > 1 and parts[1] != service:
                wrong.append(f"{path.relative_to(ROOT)} imports {mod}")
    assert not wrong, "services never import each other (move it to shared/): " + "; ".join(wrong)


def test_shared_never_imports_a_service():
    wrong = [
        f"{p.relative_to(ROOT)} imports {m}"
        for p in python_files("shared")
        for m in imported_modules(p)
        if m.split(".")[0] == "services"
    ]
    assert not wrong, "; ".join(wrong)


def test_the_import_check_catches_a_cross_service_import(tmp_path):
    bad = tmp_path / "x.py"
    bad.write_text("from services.trainer.loss import info_nce\nimport services.indexer.build\n")
    assert imported_modules(bad) == ["services.trainer.loss", "services.indexer.build"]
