"""The API reference names every public name."""

from __future__ import annotations

from pathlib import Path

import composerv

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_api_reference_covers_every_public_name() -> None:
    reference = (DOCS / "api.md").read_text()
    missing = [name for name in composerv.__all__ if f"## `{name}" not in reference]
    assert missing == []
