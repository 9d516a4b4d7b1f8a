"""Framings: how a byte stream is cut into messages, and how replies are framed.

A framing is an immutable value; its decoder is a pure incremental parser (bytes in,
complete messages out) that the blocking and the event-loop paths share:

    >>> decoder = lines().decoder()
    >>> decoder.feed(b"one\\ntw")
    [b'one']
    >>> decoder.feed(b"o\\n")
    [b'two']
    >>> lines().encode(b"reply")
    b'reply\\n'
"""

from __future__ import annotations

import abc
import socket
from collections.abc import Callable
from typing import Any, ClassVar, Generic, Literal

import attrs

from ._datagram import Datagram
from ._errors import ConfigurationError, MessageTooLargeError, TruncatedMessageError
from ._transports._base import R
from ._validate import positive_int

__all__ = [
    "Datagrams",
    "Decoder",
    "Framing",
    "LengthPrefixed",
    "Lines",
    "MessageFn",
    "StreamFraming",
    "datagrams",
    "length_prefixed",
    "lines",
]

# A line protocol with longer lines than this is rare, and a limit is what keeps a
# peer that never sends a newline from growing the buffer without bound.
DEFAULT_MAX_LINE = 65536
# Length-prefixed protocols carry bigger payloads; 1 MiB still bounds a hostile peer.
DEFAULT_MAX_FRAME = 1024 * 1024

MessageFn = Callable[[bytes], "bytes | None"]
"""One request message in, its reply out (None: no reply)."""


class Framing(Generic[R], metaclass=abc.ABCMeta):
    """How messages travel over a transport whose requests are `R`."""

    __slots__ = ()

    kind: ClassVar[str]
    """``"stream"`` or ``"datagram"``: the transports this framing fits."""


class Decoder(metaclass=abc.ABCMeta):
    """An incremental parser for one connection: feed it bytes, get whole messages.

    How the bytes were split into chunks never changes the messages that come out.
    """

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """How many bytes of an unfinished message are buffered."""
        return len(self._buffer)

    @abc.abstractmethod
    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """The messages completed by `data`, in order.

        Raises `MessageTooLargeError` when a message is over the limit; its
        ``messages`` attribute holds the complete messages that came before it.
        The decoder must not be fed again after that.
        """

    @abc.abstractmethod
    def reply_to_whole(self, buffer: memoryview, size: int, fn: MessageFn) -> bytes | None:
        """The fast path: if nothing is buffered and ``buffer[:size]`` is exactly one
        complete message within the limit, the reply `fn` gives it, framed (b"" for
        no reply); else None, without calling `fn` (then call `feed`).

        Checking, calling and framing in one call matters: Python calls are a good
        part of what an event loop spends per message.
        """

    def close(self) -> None:
        """Signal the end of the stream; raises `TruncatedMessageError` mid-message."""
        if self._buffer:
            raise TruncatedMessageError(len(self._buffer))


class StreamFraming(Framing[socket.socket]):
    """A framing for stream transports: a decoder per connection, an encoder for replies."""

    __slots__ = ()

    kind: ClassVar[str] = "stream"

    @property
    @abc.abstractmethod
    def max_size(self) -> int:
        """The largest message accepted; a longer one closes its connection."""

    @abc.abstractmethod
    def decoder(self) -> Decoder:
        """A fresh decoder for one connection."""

    @abc.abstractmethod
    def encode(self, reply: bytes) -> bytes:
        """`reply` framed for the wire."""


_NEWLINE = ord("\n")


class _LineDecoder(Decoder):
    __slots__ = ("_max_size",)

    def __init__(self, max_size: int) -> None:
        super().__init__()
        self._max_size = max_size

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        buffer = self._buffer
        # The buffered part has no newline (it would have been cut), so search only
        # what is new.
        search = len(buffer)
        buffer += data
        messages: list[bytes] = []
        start = 0
        limit = self._max_size
        while (end := buffer.find(b"\n", search)) >= 0:
            if end - start > limit:
                raise MessageTooLargeError(end - start, limit, messages)
            messages.append(bytes(buffer[start:end]))
            start = search = end + 1
        del buffer[:start]
        if len(buffer) > limit:
            raise MessageTooLargeError(len(buffer), limit, messages)
        return messages

    def reply_to_whole(self, buffer: memoryview, size: int, fn: MessageFn) -> bytes | None:
        # A newline last and none before it: exactly one whole line. Tested in this
        # order because bytearray.find with bounds costs more than the copy (and a
        # memoryview slice's tobytes() less than a bytearray slice's bytes()).
        if buffer[size - 1] == _NEWLINE and size <= self._max_size and not self._buffer:
            line = buffer[: size - 1].tobytes()
            if _NEWLINE not in line:
                reply = fn(line)
                # Framed as Lines.encode does, without the cost of calling it.
                return b"" if reply is None else reply + b"\n"
        return None


@attrs.frozen
class Lines(StreamFraming):
    """Newline-terminated messages; build it with `lines`."""

    max_size: int = attrs.field(default=DEFAULT_MAX_LINE, validator=positive_int)
    """The longest line accepted, without its ``b"\\n"``."""

    def decoder(self) -> Decoder:
        return _LineDecoder(self.max_size)

    def encode(self, reply: bytes) -> bytes:
        return reply + b"\n"


class _PrefixDecoder(Decoder):
    __slots__ = ("_header", "_max_size")

    def __init__(self, header: int, max_size: int) -> None:
        super().__init__()
        self._header = header
        self._max_size = max_size

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        buffer = self._buffer
        buffer += data
        messages: list[bytes] = []
        header = self._header
        start = 0
        while len(buffer) - start >= header:
            size = int.from_bytes(buffer[start : start + header], "big")
            if size > self._max_size:
                raise MessageTooLargeError(size, self._max_size, messages)
            end = start + header + size
            if end > len(buffer):
                break
            messages.append(bytes(buffer[start + header : end]))
            start = end
        del buffer[:start]
        return messages

    def reply_to_whole(self, buffer: memoryview, size: int, fn: MessageFn) -> bytes | None:
        header = self._header
        if (
            not self._buffer
            and size >= header
            and int.from_bytes(buffer[:header], "big") == size - header
            and size - header <= self._max_size
        ):
            reply = fn(buffer[header:size].tobytes())
            # Framed as LengthPrefixed.encode does, without the cost of calling it.
            return b"" if reply is None else len(reply).to_bytes(header, "big") + reply
        return None


def _header_size(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value not in (1, 2, 4, 8) or isinstance(value, bool):
        raise ConfigurationError(f"{attribute.name} must be 1, 2, 4 or 8 bytes, not {value!r}")


@attrs.frozen
class LengthPrefixed(StreamFraming):
    """Messages preceded by their length as a big-endian unsigned int; build it with
    `length_prefixed`."""

    header_size: Literal[1, 2, 4, 8] = attrs.field(default=4, validator=_header_size)
    """How many bytes the length takes."""
    max_size: int = attrs.field(default=DEFAULT_MAX_FRAME, validator=positive_int)
    """The largest payload accepted, without its header."""

    def decoder(self) -> Decoder:
        return _PrefixDecoder(self.header_size, self.max_size)

    def encode(self, reply: bytes) -> bytes:
        return len(reply).to_bytes(self.header_size, "big") + reply


@attrs.frozen
class Datagrams(Framing[Datagram]):
    """Each datagram is one message and each reply one datagram; build it with `datagrams`.

    The size limit is the transport's ``max_datagram_size``.
    """

    kind: ClassVar[str] = "datagram"


def lines(*, max_size: int = DEFAULT_MAX_LINE) -> Lines:
    """Messages are lines ending in ``b"\\n"``; the handler sees them without it, and
    each reply is sent followed by ``b"\\n"``.

    A line longer than `max_size` bytes closes its connection (logged as a warning),
    as does a last line the peer never finished.
    """
    return Lines(max_size=max_size)


def length_prefixed(
    *, header_size: Literal[1, 2, 4, 8] = 4, max_size: int = DEFAULT_MAX_FRAME
) -> LengthPrefixed:
    """Messages preceded by their length in `header_size` big-endian bytes; replies are
    framed the same way.

    A length over `max_size` closes its connection at once (logged as a warning),
    before any of the payload is buffered.
    """
    return LengthPrefixed(header_size=header_size, max_size=max_size)


def datagrams() -> Datagrams:
    """Each datagram is one message; a reply goes back to its sender as one datagram."""
    return Datagrams()
