"""`Connection` reads: `readline`, `recv` and `rfile` over real sockets, mixed freely."""

from __future__ import annotations

import io
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from hypothesis import given, settings
from hypothesis import strategies as st

from composerv import Connection

from .support import DEADLINE


@contextmanager
def fed_connection(chunks: list[bytes], *, pause: float = 0.001) -> Iterator[Connection]:
    """A connection (made by hand, so without limits) whose peer sends `chunks` one by
    one, pausing between them so that reads see them apart, then ends the stream."""
    ours, peer = socket.socketpair()
    ours.settimeout(DEADLINE)

    def feed() -> None:
        for chunk in chunks:
            peer.sendall(chunk)
            time.sleep(pause)
        peer.shutdown(socket.SHUT_WR)

    feeder = threading.Thread(target=feed, name="test-feeder")
    feeder.start()
    try:
        with ours:
            conn = Connection(ours, "")
            yield conn
            conn.close()
    finally:
        feeder.join(DEADLINE)
        peer.close()
    assert not feeder.is_alive()


def rest_of(conn: Connection) -> bytes:
    received = bytearray()
    while data := conn.recv():
        received += data
    return bytes(received)


LINES = st.lists(st.binary(max_size=12).map(lambda b: b.replace(b"\n", b"") + b"\n"), max_size=12)
READS = st.lists(
    st.tuples(
        st.sampled_from(["readline", "recv", "rfile.read", "rfile.readline"]),
        st.integers(min_value=-1, max_value=20),
    ),
    max_size=15,
)


@settings(max_examples=60, deadline=None)
@given(
    lines=LINES,
    tail=st.binary(max_size=8).map(lambda b: b.replace(b"\n", b"")),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=8),
    reads=READS,
)
def test_mixed_reads_return_the_stream_in_order_as_a_file_would(
    lines: list[bytes], tail: bytes, cuts: list[int], reads: list[tuple[str, int]]
) -> None:
    """Whatever the cuts between the peer's sends, each read returns what reading a
    file of the same bytes returns (`recv` returns what has arrived: a prefix)."""
    stream = b"".join(lines) + tail
    bounds = sorted({0, len(stream), *(cut for cut in cuts if cut < len(stream))})
    chunks = [stream[start:end] for start, end in itertools.pairwise(bounds)]
    model = io.BytesIO(stream)
    with fed_connection(chunks) as conn:
        for name, size in reads:
            if name == "readline":
                assert conn.readline(size) == model.readline(size)
            elif name == "rfile.readline":
                assert conn.rfile.readline(size) == model.readline(size)
            elif name == "rfile.read":
                assert conn.rfile.read(size) == model.read(size)
            else:
                received = conn.recv(max(size, 1))
                expected = model.read(len(received))
                assert received == expected
                assert received or model.tell() == len(stream)
        assert rest_of(conn) == model.read()


def test_lines_that_arrive_together_are_returned_one_by_one() -> None:
    with fed_connection([b"one\ntwo\nthr", b"ee\n"]) as conn:
        assert [conn.readline() for _ in range(4)] == [b"one\n", b"two\n", b"three\n", b""]


def test_readline_stops_at_its_limit_and_goes_on_from_there() -> None:
    with fed_connection([b"abcde\n"]) as conn:
        assert [conn.readline(2), conn.readline(2), conn.readline(9)] == [b"ab", b"cd", b"e\n"]
        assert conn.readline(0) == b""


def test_a_limit_counts_the_bytes_of_every_receive_the_line_spans() -> None:
    with fed_connection([b"ab", b"cd", b"efg\n"], pause=0.1) as conn:
        assert conn.readline(5) == b"abcde"
        assert conn.readline() == b"fg\n"


def test_bytes_readline_received_past_the_line_go_to_rfile_and_recv() -> None:
    with fed_connection([b"head\nbody part\nmore"]) as conn:
        assert conn.readline() == b"head\n"
        assert conn.recv(5) == b"body "
        assert conn.rfile.read(5) == b"part\n"
        assert conn.readline() == b"more"
        assert conn.readline() == b""


def test_a_line_that_spans_many_receives_is_returned_whole() -> None:
    line = b"x" * 300_000 + b"\n"
    chunks = [line[start : start + 1000] for start in range(0, len(line), 1000)]
    with fed_connection(chunks, pause=0.0) as conn:
        assert conn.readline(-1) == line
        assert conn.readline() == b""


def test_the_last_line_without_a_newline_is_returned_at_end_of_stream() -> None:
    with fed_connection([b"done\npart", b"ial"]) as conn:
        assert conn.readline() == b"done\n"
        assert conn.readline() == b"partial"
        assert conn.readline() == b""
