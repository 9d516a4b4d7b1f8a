"""The API reference names every public name and matches the docstrings."""

from __future__ import annotations

import composerv
from docs.generate_api import API_REFERENCE, reference


def test_api_reference_covers_every_public_name() -> None:
    text = API_REFERENCE.read_text()
    missing = [name for name in composerv.__all__ if f"## `{name}" not in text]
    assert missing == []


def test_api_reference_is_up_to_date() -> None:
    assert API_REFERENCE.read_text() == reference(), "run: python docs/generate_api.py"
