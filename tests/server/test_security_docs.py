"""docs/security.md's threat table names, for each mitigation, the tests that prove it: every one must exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _named_tests() -> set[str]:
    text = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    table = text.split("## Threats, mitigations, tests", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) >= 12, "the threat table lost its rows"
    names: set[str] = set()
    for row in rows:
        found = re.findall(r"`(test_[a-z0-9_]+)`", row.rsplit("|", 2)[-2])
        assert found, f"a threat without a test: {row[:80]}"
        names.update(found)
    return names


def _defined_tests() -> set[str]:
    names = set()
    for path in (ROOT / "tests").rglob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                names.add(node.name)
    return names


def test_every_test_the_threat_model_names_exists() -> None:
    missing = _named_tests() - _defined_tests()
    assert not missing, f"docs/security.md names tests that do not exist: {sorted(missing)}"
