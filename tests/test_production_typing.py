"""Static typing of the production values: workers(), tls(), inherited() in serve()."""

from __future__ import annotations

import re

from .test_typing import SNIPPETS, errors_by_line, run_mypy

EXPECTED = {
    "stream-on-inherited-dgram": (
        'Argument 1 to "serve" has incompatible type "InheritedDatagram"; '
        'expected "Transport[socket, '
    ),
    "datagram-on-tls": 'Argument 3 to "serve" has incompatible type "DatagramHandler"',
    "tls-over-udp": 'Argument 1 to "tls" has incompatible type "UDP"; expected "StreamTransport[',
    "proxy-over-udp": (
        'Argument 1 to "proxy_protocol" has incompatible type "UDP"; expected "StreamTransport['
    ),
    "datagram-on-proxy": 'Argument 3 to "serve" has incompatible type "DatagramHandler"',
    "workers-of-str": 'No overload variant of "workers" matches argument types "int", "str"',
    "stream-on-evented-workers": 'Argument 2 to "workers" has incompatible type "Evented"',
}


def test_production_values_type_check_and_mismatches_fail() -> None:
    snippet = SNIPPETS / "production.py"
    result = run_mypy(str(snippet))
    found = errors_by_line(result.stdout + result.stderr, "production.py")
    expected = {
        number: match.group(1)
        for number, line in enumerate(snippet.read_text().splitlines(), start=1)
        if (match := re.search(r"# E: (\S+)$", line))
    }
    assert set(found) == set(expected), result.stdout
    for number, label in expected.items():
        assert any(EXPECTED[label] in message for message in found[number]), found[number]
