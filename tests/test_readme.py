"""The README is the operators' reference: keep it true to the code."""

from __future__ import annotations

from pathlib import Path

from common.settings import reference_rows

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_readme_starts_with_the_two_commands():
    head = README[:1500]
    assert "make run" in head and "make test" in head


def test_every_setting_is_documented_with_its_default():
    missing = []
    for section, key, default, _ in reference_rows():
        row = f"| `{key}` | " + (f"`{default}`" if default != "" else "(empty)")
        if f"**[{section}]**" not in README or row not in README:
            missing.append(f"[{section}] {key}")
    assert not missing, f"README settings reference lacks: {missing}"
