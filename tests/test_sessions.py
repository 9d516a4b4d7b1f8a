"""Sessions: state per connection, actions, broadcast with a slow-consumer policy, and
bounded output, under every concurrency that runs them."""

from __future__ import annotations

import ctypes
import logging
import mmap
import re
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from composerv import (
    ConfigurationError,
    datagram_session_handler,
    evented,
    forking,
    limits,
    message_handler,
    pooled,
    serve,
    session_handler,
    sync,
    tcp,
    threaded,
    udp,
    workers,
)
from composerv.sessions import Broadcast, Close, Join, Leave, Send
from composerv.testing import run_bytes, run_messages

from .support import DEADLINE, connect, recv_exactly, serving, wait_until

CONCURRENCIES: dict[str, Callable[[], Any]] = {
    "sync": sync,
    "threaded": threaded,
    "pooled": pooled,
    "forking": forking,
    "evented": evented,
    "workers": lambda: workers(2, evented()),
}
# Broadcast reaches the connections of one process, served at once.
SHARED = {name: CONCURRENCIES[name] for name in ("threaded", "pooled", "evented")}


def _counter(_peer: object) -> int:
    return 0


def _count(state: int, line: bytes) -> tuple[int, Any]:
    if line == b"bye":
        return state, [Send(b"bye after %d" % state), Close()]
    return state + 1, b"%d %s" % (state + 1, line)


@pytest.mark.parametrize("name", CONCURRENCIES)
def test_each_connection_has_its_own_state_and_close_ends_it(
    name: str, composerv_no_leaks: None
) -> None:
    server = serve(tcp(("127.0.0.1", 0)), CONCURRENCIES[name](), session_handler(_counter, _count))
    with serving(server):
        for _ in range(2):  # a second connection starts from its own fresh state
            with connect(server.address) as client:
                client.sendall(b"a\nb\nbye\nnot answered\n")
                assert recv_exactly(client, 20) == b"1 a\n2 b\nbye after 2\n"
                assert client.recv(1) == b"", "Close ends the connection after the reply"


def _chat_start(_peer: object) -> bytes | None:
    return None


def _chat_step(nick: bytes | None, line: bytes) -> tuple[bytes | None, Any]:
    if nick is None:
        return line, [Join("room"), Send(b"hi " + line)]
    if line == b"leave":
        return nick, [Leave("room"), Send(b"left")]
    return nick, Broadcast(nick + b": " + line, group="room")


@pytest.mark.parametrize("name", SHARED)
def test_broadcast_reaches_the_group_but_the_sender_in_order(
    name: str, composerv_no_leaks: None
) -> None:
    handler = session_handler(_chat_start, _chat_step)
    with serving(serve(tcp(("127.0.0.1", 0)), SHARED[name](), handler)) as server:
        with (
            connect(server.address) as al,
            connect(server.address) as bo,
            connect(server.address) as cy,
        ):
            for sock, nick in ((al, b"al"), (bo, b"bo"), (cy, b"cy")):
                sock.sendall(nick + b"\n")
                assert recv_exactly(sock, 6) == b"hi " + nick + b"\n"
            cy.sendall(b"leave\n")
            assert recv_exactly(cy, 5) == b"left\n", "a Send after Leave reaches its own connection"
            for n in range(50):
                al.sendall(b"%d\n" % n)
            expected = b"".join(b"al: %d\n" % n for n in range(50))
            assert recv_exactly(bo, len(expected)) == expected
            bo.sendall(b"back\n")
            assert recv_exactly(al, 9) == b"bo: back\n", "the sender got nothing of its own"
            cy.settimeout(0.2)
            with pytest.raises(TimeoutError):
                cy.recv(1)  # it left the room


# The clients that do not read keep their default receive buffer: shrunk below
# loopback's 64 KiB segment (SO_RCVBUF=4096), TCP sends to them only at its
# zero-window probes, about 40 KB/s, and still does once they read again with a
# larger buffer (measured: 450 KB in 10 s), so they would take minutes to read what
# the server sent them. Not reading, they keep the initial buffer (128 KiB): it
# grows only as the application reads.


@pytest.mark.parametrize("name", SHARED)
@pytest.mark.parametrize("policy", ["close", "drop"])
def test_a_consumer_that_does_not_read_is_handled_by_the_policy_and_others_go_on(
    name: str, policy: Any, caplog: pytest.LogCaptureFixture, composerv_no_leaks: None
) -> None:
    handler = session_handler(_chat_start, _chat_step, slow_consumer=policy)
    bound = limits(max_output_buffer=64 * 1024)
    server = serve(tcp(("127.0.0.1", 0)), SHARED[name](), handler, limits=bound)
    with serving(server):
        with (
            connect(server.address) as sender,
            connect(server.address) as reader,
            connect(server.address) as stalled,
        ):
            for sock, nick in ((sender, b"s"), (reader, b"r"), (stalled, b"x")):
                sock.sendall(nick + b"\n")
                assert recv_exactly(sock, 5) == b"hi " + nick + b"\n"
            line = b"y" * 1000
            # 10 MB to each: more than the kernel's buffers and the bound together
            lines = 10_000
            drained = threading.Thread(
                target=lambda: recv_exactly(reader, lines * 1004), name="test-reader"
            )
            drained.start()
            started = time.monotonic()
            for _ in range(lines):
                sender.sendall(line + b"\n")
            drained.join(DEADLINE)
            assert not drained.is_alive(), "the reading client was held up by the stalled one"
            assert time.monotonic() - started < DEADLINE / 2
            got = _read_until_closed_or_quiet(stalled)
            if policy == "close":
                assert got.closed, "the stalled client is disconnected"
            assert len(got.data) < lines * 1004, "the stalled client missed messages"
    # One line as the episode begins, the same under every concurrency, and one with
    # its count as the server closes (a close may have had no more sends to count).
    lagging = [record for record in caplog.records if "is not reading" in record.getMessage()]
    assert [record.levelname for record in lagging] in (["WARNING"], ["WARNING"] * 2)
    # A connection that took only part of a message is closed whatever the policy
    # (the rest cannot be left out): then no later message is dropped to be counted.
    said = "closing it" if policy == "close" or got.closed else "dropping"
    assert said in lagging[-1].getMessage()
    if policy == "drop" and not got.closed:
        assert len(lagging) == 2, "the messages dropped after the first are not counted"
        assert re.search(r"\(\d+ more like it since the last line", lagging[1].getMessage())
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


@pytest.mark.parametrize("name", ["evented", "workers"])
def test_waiting_for_a_slow_consumer_is_refused_on_an_event_loop(name: str) -> None:
    handler = session_handler(_chat_start, _chat_step, slow_consumer="wait")
    with pytest.raises(ConfigurationError, match=r"slow_consumer='wait'.*threaded\(\)"):
        serve(tcp(("127.0.0.1", 0)), CONCURRENCIES[name](), handler)


@pytest.mark.parametrize("name", ["threaded", "pooled"])
def test_waiting_for_a_slow_consumer_delivers_every_message_in_order(
    name: str, composerv_no_leaks: None
) -> None:
    """Under ``"wait"`` the sender is held until the consumer has room: a consumer
    that reads late, after more than its buffers hold was sent, misses nothing."""
    handler = session_handler(_chat_start, _chat_step, slow_consumer="wait")
    bound = limits(max_output_buffer=64 * 1024, write_timeout=DEADLINE)
    server = serve(tcp(("127.0.0.1", 0)), SHARED[name](), handler, limits=bound)
    with serving(server):
        with connect(server.address) as sender, connect(server.address) as late:
            for sock, nick in ((sender, b"s"), (late, b"l")):
                sock.sendall(nick + b"\n")
                assert recv_exactly(sock, 5) == b"hi " + nick + b"\n"
            lines = [b"%05d" % n + b"y" * 995 for n in range(4_000)]  # 4 MB
            feeder = threading.Thread(
                target=lambda: sender.sendall(b"".join(line + b"\n" for line in lines)),
                name="test-sender",
            )
            feeder.start()
            time.sleep(0.5)  # the server fills what the kernel holds for `late`, then waits
            expected = b"".join(b"s: " + line + b"\n" for line in lines)
            assert recv_exactly(late, len(expected)) == expected
            feeder.join(DEADLINE)
            assert not feeder.is_alive()


class _Got:
    def __init__(self, data: bytes, closed: bool) -> None:
        self.data = data
        self.closed = closed


def _read_until_closed_or_quiet(sock: socket.socket) -> _Got:
    data = bytearray()
    sock.settimeout(0.5)
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (TimeoutError, ConnectionResetError):
        return _Got(bytes(data), closed=False)
    return _Got(bytes(data), closed=True)


def _replying_big(kind: str, answered: ctypes.c_int64) -> Any:
    """A handler of `kind` whose every reply is 4,000 bytes, counting in `answered`
    (in memory shared with children and workers, which count too; one connection
    is served by one process, so the count needs no lock)."""

    def big(_message: bytes) -> bytes:
        answered.value += 1
        return b"v" * 4000

    if kind == "message":
        return message_handler(big)
    return session_handler(_counter, lambda state, message: (state, big(message)))


@pytest.mark.parametrize("kind", ["message", "session"])
@pytest.mark.parametrize("name", CONCURRENCIES)
def test_replies_wait_for_a_client_that_does_not_read_and_memory_stays_bounded(
    name: str, kind: str, composerv_no_leaks: None
) -> None:
    """A receive full of requests is answered only as fast as the client takes the
    replies: the server stops decoding once max_output_buffer waits for it."""
    shared = mmap.mmap(-1, ctypes.sizeof(ctypes.c_int64))  # anonymous: no descriptor
    answered = ctypes.c_int64.from_buffer(shared)
    bound = limits(max_output_buffer=64 * 1024)
    handler = _replying_big(kind, answered)
    with serving(serve(tcp(("127.0.0.1", 0)), CONCURRENCIES[name](), handler, limits=bound)) as s:
        with connect(s.address) as client:
            client.sendall(b"\n" * 20_000)  # 80 MB of replies, were they all made at once
            wait_until(lambda: answered.value > 0, "the first replies")
            time.sleep(0.3)  # the time under test: a client that does not read
            held = answered.value
            assert held < 5_000, f"{held} replies made for a client that reads none"
            total = 20_000 * 4001
            assert len(recv_exactly(client, total)) == total
            assert answered.value == 20_000


def test_datagram_sessions_keep_state_per_sender(composerv_no_leaks: None) -> None:
    def step(count: int, data: bytes) -> tuple[int, bytes]:
        return count + 1, b"%d:%s" % (count + 1, data)

    handler = datagram_session_handler(_counter, step)
    for factory in (sync, evented):
        with serving(serve(udp(("127.0.0.1", 0)), factory(), handler)) as server:
            with (
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as one,
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as two,
            ):
                for sock in (one, two):
                    sock.settimeout(DEADLINE)
                one.sendto(b"a", server.address)
                assert one.recv(100) == b"1:a"
                one.sendto(b"b", server.address)
                assert one.recv(100) == b"2:b"
                two.sendto(b"c", server.address)
                assert two.recv(100) == b"1:c"


def test_run_messages_drives_a_session_with_no_socket() -> None:
    handler = session_handler(_chat_start, _chat_step)
    assert run_messages(handler, [b"al", b"alone here"]) == [b"hi al"]
    assert run_messages(session_handler(_counter, _count), [b"x", b"bye"]) == [
        b"1 x",
        b"bye after 1",
    ]
    assert run_bytes(session_handler(_counter, _count), b"x\ny\n") == b"1 x\n2 y\n"


# Logged in this process: a forked child's log does not reach caplog.
IN_PROCESS = {name: CONCURRENCIES[name] for name in ("sync", "threaded", "pooled", "evented")}


@pytest.mark.parametrize("name", IN_PROCESS)
def test_a_step_that_returns_something_else_is_an_error_naming_it(
    name: str, caplog: pytest.LogCaptureFixture, composerv_no_leaks: None
) -> None:
    def wrong(state: int, line: bytes) -> tuple[int, Any]:
        if line == b"fine":
            return state, b"fine too"
        return state, [Send(b"ok"), "not an action"]

    handler = session_handler(_counter, wrong)
    with serving(serve(tcp(("127.0.0.1", 0)), IN_PROCESS[name](), handler)) as s:
        with connect(s.address) as client, connect(s.address) as other:
            # The reply before the wrong output in the same receive goes out too.
            client.sendall(b"fine\nx\nnot answered\n")
            assert recv_exactly(client, 12) == b"fine too\nok\n"
            assert client.recv(1) == b"", "the wrong output closes its connection"
            other.sendall(b"fine\n")
            assert recv_exactly(other, 9) == b"fine too\n", "and only that one"
    assert "must return bytes, None or actions" in caplog.text
    assert "not str 'not an action' in [Send(data=b'ok'), 'not an action']" in caplog.text


def test_an_output_that_is_no_action_nor_a_list_of_them_is_named() -> None:
    def text(state: int, line: bytes) -> tuple[int, Any]:
        return state, "text"

    with pytest.raises(TypeError, match=r"must return bytes, None or actions .*not str 'text'"):
        run_messages(session_handler(_counter, text), [b"x"])
