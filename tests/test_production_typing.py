"""Static typing of the production values: workers(), tls(), inherited() in serve()."""

from __future__ import annotations

import pytest

from .typecheck import CHECKERS, Checker, Expected, assert_errors_match, snippet_errors

EXPECTED = {
    "stream-on-inherited-dgram": Expected(
        'Argument 1 to "serve" has incompatible type "InheritedDatagram"; '
        'expected "Transport[socket, ',
        'Argument of type "StreamHandler" cannot be assigned to parameter "handler" of type '
        '"Handler[Datagram]"',
    ),
    "datagram-on-tls": Expected(
        'Argument 3 to "serve" has incompatible type "DatagramHandler"',
        'Argument of type "DatagramHandler" cannot be assigned to parameter "handler" of type '
        '"Handler[socket]"',
    ),
    "tls-over-udp": Expected(
        'Argument 1 to "tls" has incompatible type "UDP"; expected "StreamTransport[',
        'Argument of type "UDP" cannot be assigned to parameter "transport" of type '
        '"StreamTransport[A@tls]"',
    ),
    "proxy-over-udp": Expected(
        'Argument 1 to "proxy_protocol" has incompatible type "UDP"; expected "StreamTransport[',
        'Argument of type "UDP" cannot be assigned to parameter "transport" of type '
        '"StreamTransport[A@proxy_protocol]"',
    ),
    "datagram-on-proxy": Expected(
        'Argument 3 to "serve" has incompatible type "DatagramHandler"',
        'Argument of type "DatagramHandler" cannot be assigned to parameter "handler" of type '
        '"Handler[socket]"',
    ),
    "workers-of-str": Expected(
        'No overload variant of "workers" matches argument types "int", "str"',
        'cannot be assigned to parameter "concurrency" of type "C@workers"',
    ),
    "stream-on-evented-workers": Expected(
        'Argument 2 to "workers" has incompatible type "Evented"',
        'Argument of type "StreamHandler" cannot be assigned to parameter "handler" of type '
        '"MessageHandler[socket]"',
    ),
}


@pytest.mark.parametrize("checker", CHECKERS)
def test_production_values_type_check_and_mismatches_fail(checker: Checker) -> None:
    found = snippet_errors(checker, "production.py")
    assert_errors_match(found, "production.py", EXPECTED, checker)
