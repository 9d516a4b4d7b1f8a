"""Static typing of the fast concurrencies: evented() takes message handlers only,
asyncio_loop() async handlers only, and framings decide the transport kind."""

from __future__ import annotations

import re

import pytest

from .test_typing import SNIPPETS, errors_by_line, run_mypy

EXPECTED = {
    "blocking-on-evented": 'No overload variant of "serve" matches argument types "TCP", '
    '"Evented", "StreamHandler"',
    "async-on-evented": 'No overload variant of "serve" matches argument types "TCP", '
    '"Evented", "AsyncStreamHandler"',
    "message-on-asyncio": 'No overload variant of "serve" matches argument types "TCP", '
    '"AsyncioLoop", "StreamMessageHandler"',
    "lines-on-udp": 'Argument 1 to "serve" has incompatible type "UDP"; '
    'expected "Transport[socket, ',
    "datagrams-on-tcp": 'Argument 3 to "serve" has incompatible type "DatagramMessageHandler"; '
    'expected "Handler[socket]"',
    "reply-not-bytes": 'Argument 1 to "message_handler" has incompatible type '
    '"Callable[[bytes], str]"; expected "Callable[[bytes], bytes | None]"',
    "workers-as-str": 'Argument "workers" to "pooled" has incompatible type "str"',
    "when-full-literal": 'Argument "when_full" to "pooled" has incompatible type',
}


@pytest.fixture(scope="module")
def snippet_output() -> str:
    result = run_mypy(str(SNIPPETS / "perf_good.py"), str(SNIPPETS / "perf_bad.py"))
    return result.stdout + result.stderr


def test_good_pairings_type_check(snippet_output: str) -> None:
    assert errors_by_line(snippet_output, "perf_good.py") == {}, snippet_output


def test_every_bad_pairing_is_an_error_and_nothing_else_is(snippet_output: str) -> None:
    source = (SNIPPETS / "perf_bad.py").read_text().splitlines()
    wanted = {
        number: EXPECTED[match.group(1)]
        for number, line in enumerate(source, start=1)
        if (match := re.search(r"# E: (\S+)$", line))
    }
    assert set(wanted.values()) == set(EXPECTED.values()), "every expectation is used once"
    found = errors_by_line(snippet_output, "perf_bad.py")
    assert set(found) == set(wanted), snippet_output
    for number, fragment in wanted.items():
        assert any(fragment in message for message in found[number]), (number, found[number])
