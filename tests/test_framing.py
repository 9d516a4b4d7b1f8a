"""Framings: decoders are pure incremental parsers whose output never depends on how
the byte stream was split into receives."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from composerv import (
    ConfigurationError,
    MessageTooLargeError,
    TruncatedMessageError,
    length_prefixed,
    lines,
)
from composerv.abc import Decoder, StreamFraming

MAX = 64

line_messages = st.lists(st.binary(max_size=MAX).map(lambda b: b.replace(b"\n", b"")), max_size=20)
frame_messages = st.lists(st.binary(max_size=MAX), max_size=20)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    """`data` cut at the given offsets (any order, repeats allowed)."""
    points = sorted({cut % (len(data) + 1) for cut in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def decode_all(decoder: Decoder, chunks: list[bytes]) -> list[bytes]:
    messages: list[bytes] = []
    for chunk in chunks:
        messages += decoder.feed(chunk)
    return messages


def decode_until_error(decoder: Decoder, chunks: list[bytes]) -> tuple[list[bytes], Exception]:
    messages: list[bytes] = []
    for chunk in chunks:
        try:
            messages += decoder.feed(chunk)
        except MessageTooLargeError as error:
            return messages + error.messages, error
    try:
        decoder.close()
    except TruncatedMessageError as error:
        return messages, error
    raise AssertionError("no error")


FRAMINGS: list[tuple[StreamFraming, st.SearchStrategy[list[bytes]]]] = [
    (lines(max_size=MAX), line_messages),
    (length_prefixed(max_size=MAX), frame_messages),
    (length_prefixed(header_size=1, max_size=MAX), frame_messages),
    (length_prefixed(header_size=2, max_size=MAX), frame_messages),
    (length_prefixed(header_size=8, max_size=MAX), frame_messages),
]
IDS = ["lines", "prefix4", "prefix1", "prefix2", "prefix8"]


@pytest.mark.parametrize(("framing", "messages"), FRAMINGS, ids=IDS)
def test_any_split_gives_the_same_messages(
    framing: StreamFraming, messages: st.SearchStrategy[list[bytes]]
) -> None:
    @given(messages, st.lists(st.integers(min_value=0), max_size=30))
    def check(sent: list[bytes], cuts: list[int]) -> None:
        wire = b"".join(framing.encode(message) for message in sent)
        decoder = framing.decoder()
        assert decode_all(decoder, split(wire, cuts)) == sent
        assert decoder.pending == 0
        decoder.close()

    check()


@pytest.mark.parametrize(("framing", "messages"), FRAMINGS, ids=IDS)
def test_an_oversize_message_is_an_error_after_the_messages_before_it(
    framing: StreamFraming, messages: st.SearchStrategy[list[bytes]]
) -> None:
    @given(messages, messages, st.lists(st.integers(min_value=0), max_size=30))
    def check(before: list[bytes], after: list[bytes], cuts: list[int]) -> None:
        oversize = b"x" * (MAX + 1)
        wire = b"".join(framing.encode(message) for message in [*before, oversize, *after])
        decoded, error = decode_until_error(framing.decoder(), split(wire, cuts))
        assert isinstance(error, MessageTooLargeError)
        assert error.limit == MAX
        assert error.size > MAX
        assert decoded == before

    check()


@pytest.mark.parametrize(("framing", "messages"), FRAMINGS, ids=IDS)
def test_a_truncated_last_message_is_an_error_at_end_of_stream(
    framing: StreamFraming, messages: st.SearchStrategy[list[bytes]]
) -> None:
    @given(messages, st.binary(min_size=1, max_size=MAX), st.data())
    def check(sent: list[bytes], last: bytes, data: st.DataObject) -> None:
        last = last.replace(b"\n", b"") or b"y"
        frame = framing.encode(last)
        cut = data.draw(st.integers(min_value=1, max_value=len(frame) - 1), label="cut")
        wire = b"".join(framing.encode(message) for message in sent) + frame[:cut]
        decoded, error = decode_until_error(framing.decoder(), split(wire, [cut * 7]))
        assert isinstance(error, TruncatedMessageError)
        assert error.pending == cut
        assert decoded == sent

    check()


def _reversed_unless_empty(message: bytes) -> bytes | None:
    return message[::-1] or None


@pytest.mark.parametrize("framing", [entry[0] for entry in FRAMINGS], ids=IDS)
def test_the_fast_path_agrees_with_feed(framing: StreamFraming) -> None:
    @given(st.binary(max_size=2 * MAX), st.booleans())
    def check(payload: bytes, frame_it: bool) -> None:
        data = framing.encode(payload.replace(b"\n", b"")) if frame_it else payload
        if not data:
            return
        buffer = bytearray(data + b"garbage after the received size")
        called: list[bytes] = []

        def fn(message: bytes) -> bytes | None:
            called.append(message)
            return _reversed_unless_empty(message)

        fast = framing.decoder().reply_to_whole(memoryview(buffer), len(data), fn)
        try:
            slow = framing.decoder().feed(data)
        except MessageTooLargeError:
            slow = []
        if fast is not None:
            assert called == slow
            reply = _reversed_unless_empty(slow[0])
            assert fast == (b"" if reply is None else framing.encode(reply))
        else:
            assert called == []
            if len(slow) == 1:
                # The fast path may decline, but only when feed needs to do more
                # than return the one message (oversize checks are equivalent).
                assert framing.encode(slow[0]) != data

    check()


def test_the_fast_path_declines_when_bytes_are_buffered() -> None:
    decoder = lines().decoder()
    assert decoder.feed(b"par") == []
    assert decoder.reply_to_whole(memoryview(b"tial\n"), 5, _reversed_unless_empty) is None
    assert decoder.feed(b"tial\n") == [b"partial"]


def test_a_length_over_the_limit_fails_before_the_payload_arrives() -> None:
    decoder = length_prefixed(max_size=10).decoder()
    with pytest.raises(MessageTooLargeError, match="max_size=10"):
        decoder.feed((11).to_bytes(4, "big"))


def test_a_line_over_the_limit_fails_before_its_newline_arrives() -> None:
    decoder = lines(max_size=4).decoder()
    assert decoder.feed(b"1234") == []
    with pytest.raises(MessageTooLargeError):
        decoder.feed(b"5")


def test_encoding() -> None:
    assert lines().encode(b"hi") == b"hi\n"
    assert length_prefixed().encode(b"hi") == b"\x00\x00\x00\x02hi"
    assert length_prefixed(header_size=1).encode(b"") == b"\x00"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: lines(max_size=0), "max_size must be a positive int, not 0"),
        (lambda: length_prefixed(header_size=3), "header_size must be 1, 2, 4 or 8 bytes, not 3"),
        (lambda: length_prefixed(max_size=-1), "max_size must be a positive int, not -1"),
    ],
)
def test_bad_options_are_named(make: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        make()  # type: ignore[operator]


@pytest.mark.parametrize(
    ("framing", "encode"),
    [
        (lines(max_size=5), lambda message: message + b"\n"),
        (length_prefixed(max_size=5), lambda message: len(message).to_bytes(4, "big") + message),
    ],
    ids=["lines", "length-prefixed"],
)
def test_max_size_is_the_longest_message_accepted(framing: StreamFraming, encode: Any) -> None:
    """A message of exactly max_size bytes passes, alone or after another in the same
    receive; one byte more fails, and the error names its own size."""
    assert framing.decoder().feed(encode(b"12345")) == [b"12345"]
    assert framing.decoder().feed(encode(b"ok") + encode(b"12345")) == [b"ok", b"12345"]
    with pytest.raises(MessageTooLargeError) as raised:
        framing.decoder().feed(encode(b"ok") + encode(b"123456"))
    assert raised.value.messages == [b"ok"]
    assert (raised.value.size, raised.value.limit) == (6, 5)


@pytest.mark.parametrize("header_size", [1, 2, 4, 8])
def test_every_documented_header_size_frames_a_message(header_size: Any) -> None:
    framing = length_prefixed(header_size=header_size, max_size=300)
    message = b"m" * 257 if header_size > 1 else b"m" * 255
    frame = framing.encode(message)
    assert frame == len(message).to_bytes(header_size, "big") + message
    assert framing.decoder().feed(frame + frame) == [message, message]
