"""No text key is given twice in the core's catalog files: the later file would silently
replace the earlier one's text (a staff link's error once replaced a mediation link's)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CORE = Path(__file__).resolve().parents[2] / "callcenter" / "i18n"


def _keys(tree: dict[str, Any], prefix: str = "") -> set[str]:
    out: set[str] = set()
    for key, value in tree.items():
        full = f"{prefix}.{key}" if prefix else key
        out |= _keys(value, full) if isinstance(value, dict) else {full}
    return out


def test_no_key_in_two_files() -> None:
    for locale in ("zh-CN", "en"):
        seen: dict[str, str] = {}
        twice = []
        for path in sorted((CORE / locale).glob("*.json")):
            for key in _keys(json.loads(path.read_text("utf-8"))):
                if key in seen:
                    twice.append(f"{locale}: {key} in {seen[key]} and {path.name}")
                seen[key] = path.name
        assert twice == []
