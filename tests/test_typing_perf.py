"""Static typing of the fast concurrencies: evented() takes message handlers only,
asyncio_loop() async handlers only, and framings decide the transport kind."""

from __future__ import annotations

import pytest

from .typecheck import CHECKERS, Checker, Expected, assert_errors_match, snippet_errors

EXPECTED = {
    "blocking-on-evented": Expected(
        'No overload variant of "serve" matches argument types "TCP", "Evented", "StreamHandler"',
        'Argument of type "StreamHandler" cannot be assigned to parameter "handler" of type '
        '"MessageHandler[socket]"',
    ),
    "async-on-evented": Expected(
        'No overload variant of "serve" matches argument types "TCP", "Evented", '
        '"AsyncStreamHandler"',
        'Argument of type "AsyncStreamHandler" cannot be assigned to parameter "handler" of '
        'type "MessageHandler[socket]"',
    ),
    "message-on-asyncio": Expected(
        'No overload variant of "serve" matches argument types "TCP", "AsyncioLoop", '
        '"StreamMessageHandler"',
        'Argument of type "StreamMessageHandler" cannot be assigned to parameter "handler" of '
        'type "AsyncStreamHandler"',
    ),
    "lines-on-udp": Expected(
        'Argument 1 to "serve" has incompatible type "UDP"; expected "Transport[socket, ',
        'Argument of type "StreamMessageHandler" cannot be assigned to parameter "handler" of '
        'type "MessageHandler[Datagram]"',
    ),
    "datagrams-on-tcp": Expected(
        'Argument 3 to "serve" has incompatible type "DatagramMessageHandler"; '
        'expected "Handler[socket]"',
        'Argument of type "DatagramMessageHandler" cannot be assigned to parameter "handler" of '
        'type "Handler[socket]"',
    ),
    "reply-not-bytes": Expected(
        'Argument 1 to "message_handler" has incompatible type "Callable[[bytes], str]"; '
        'expected "Callable[[bytes], bytes | None]"',
        'Function return type "str" is incompatible with type "bytes | None"',
    ),
    "workers-as-str": Expected(
        'Argument "workers" to "pooled" has incompatible type "str"',
        'cannot be assigned to parameter "workers" of type "int"',
    ),
    "when-full-literal": Expected(
        'Argument "when_full" to "pooled" has incompatible type',
        'Argument of type "Literal[\'drop\']" cannot be assigned to parameter "when_full" of '
        "type \"Literal['wait', 'reject']\"",
    ),
}

PAIRINGS = ("perf_good.py", "perf_bad.py")


@pytest.mark.parametrize("checker", CHECKERS)
def test_good_pairings_type_check(checker: Checker) -> None:
    assert snippet_errors(checker, *PAIRINGS)["perf_good.py"] == {}


@pytest.mark.parametrize("checker", CHECKERS)
def test_every_bad_pairing_is_an_error_and_nothing_else_is(checker: Checker) -> None:
    assert_errors_match(snippet_errors(checker, *PAIRINGS), "perf_bad.py", EXPECTED, checker)
