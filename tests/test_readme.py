"""The README stays true: its configuration table lists every setting with its default."""

from __future__ import annotations

from pathlib import Path

import pytest

from relay.config import SETTINGS, SettingSpec

README = (Path(__file__).resolve().parent.parent / "README.md").read_text("utf-8")
ROWS = {
    line.split("|")[1].strip(): line for line in README.splitlines() if line.startswith("| `RELAY_")
}


def _shown(default: object) -> str:
    if isinstance(default, tuple):
        return "`" + ",".join(str(item) for item in default) + "`" if default else "(none)"
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    return "(none)" if default is None else f"`{default}`"


@pytest.mark.parametrize("spec", SETTINGS, ids=lambda spec: spec.suffix)
def test_every_setting_is_documented_with_its_default(spec: SettingSpec) -> None:
    row = ROWS.get(f"`RELAY_{spec.suffix}`")
    assert row is not None, f"README lacks RELAY_{spec.suffix}"
    cells = [cell.strip() for cell in row.split("|")]
    assert cells[3] == _shown(spec.default)
    for flag in spec.flags:
        assert f"`{flag}`" in cells[2]


def test_no_stale_settings_are_documented() -> None:
    assert set(ROWS) == {f"`RELAY_{spec.suffix}`" for spec in SETTINGS}


def test_the_two_commands_are_there() -> None:
    assert 'pip install -e ".[dev]" && relay serve' in README
    assert "\npytest\n" in README
