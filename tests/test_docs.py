"""The API reference names every public name and matches the docstrings."""

from __future__ import annotations

import re
from typing import Any

import composerv
from docs.generate_api import API_REFERENCE, reference

from .support import connect, recv_exactly, serving


def test_api_reference_covers_every_public_name() -> None:
    text = API_REFERENCE.read_text()
    missing = [name for name in composerv.__all__ if f"## `{name}" not in text]
    assert missing == []


def test_api_reference_is_up_to_date() -> None:
    assert API_REFERENCE.read_text() == reference(), "run: python docs/generate_api.py"


def test_the_quick_start_runs_as_written(no_leaks: None) -> None:
    """Its code blocks, in order, in one namespace: what a reader would paste."""
    text = (API_REFERENCE.parent / "quickstart.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    assert len(blocks) >= 4
    namespace: dict[str, Any] = {}
    try:
        for number, block in enumerate(blocks):
            exec(compile(block, f"quickstart.md block {number}", "exec"), namespace)
        with serving(namespace["server"]) as server, connect(server.address) as client:
            client.sendall(b"hello\n")
            assert recv_exactly(client, 6) == b"HELLO\n"
    finally:
        for name in ("server", "tcp_server", "udp_server"):
            if name in namespace:
                namespace[name].server_close()
