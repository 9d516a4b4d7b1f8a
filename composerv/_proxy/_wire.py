"""The PROXY protocol's wire format: sizes, the v2 family byte, TLV framing.

Shared by the value (which checks that it can be sent), the decoder and the encoder.
Section numbers refer to HAProxy's proxy-protocol.txt.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Iterator

from .._errors import ProxyHeaderError

__all__ = [
    "ADDRESS_BLOCK_SIZES",
    "FAMILIES",
    "FAMILY_BYTES",
    "TLV_HEADER_SIZE",
    "Tlv",
    "UNIX_ADDRESS_SIZE",
    "V1_MAX_SIZE",
    "V1_MIN_SIZE",
    "V1_PREFIX",
    "V2_FIXED_SIZE",
    "V2_MAX_LENGTH",
    "V2_SIGNATURE",
    "iter_tlvs",
    "join_tlvs",
    "show",
    "split_tlvs",
]

Tlv = tuple[int, bytes]
"""A TLV as ``(type, value)``."""

V1_PREFIX = b"PROXY "
# Section 2.1: "PROXY UNKNOWN\r\n" is the shortest line, and the longest is UNKNOWN
# followed by two full-length IPv6 addresses and ports; receivers must refuse longer.
V1_MIN_SIZE = 15
V1_MAX_SIZE = 107

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
# The signature, then one byte each for version/command and family/protocol, then
# the big-endian length of what follows (addresses and TLVs).
V2_FIXED_SIZE = 16
V2_MAX_LENGTH = 0xFFFF

# Section 2.2: the seven family/protocol bytes a receiver may accept, as socket constants.
# The protocol is None for AF_UNSPEC: there is no socket type for "unspecified".
FAMILIES: dict[int, tuple[socket.AddressFamily, socket.SocketKind | None]] = {
    0x00: (socket.AF_UNSPEC, None),
    0x11: (socket.AF_INET, socket.SOCK_STREAM),
    0x12: (socket.AF_INET, socket.SOCK_DGRAM),
    0x21: (socket.AF_INET6, socket.SOCK_STREAM),
    0x22: (socket.AF_INET6, socket.SOCK_DGRAM),
    0x31: (socket.AF_UNIX, socket.SOCK_STREAM),
    0x32: (socket.AF_UNIX, socket.SOCK_DGRAM),
}
FAMILY_BYTES = {pair: code for code, pair in FAMILIES.items()}

# Two addresses, then two 16-bit ports for the inet families.
ADDRESS_BLOCK_SIZES = {
    socket.AF_UNSPEC: 0,
    socket.AF_INET: 2 * 4 + 2 * 2,
    socket.AF_INET6: 2 * 16 + 2 * 2,
    socket.AF_UNIX: 2 * 108,
}
UNIX_ADDRESS_SIZE = 108

TLV_HEADER_SIZE = 3  # type, then the big-endian length of the value


def iter_tlvs(data: bytes, start: int, end: int, what: str) -> Iterator[tuple[int, int, int]]:
    """``(type, value_start, value_end)`` for each TLV in ``data[start:end]``.

    Raises `ProxyHeaderError` naming `what` (e.g. "TLV") if one runs past `end`.
    """
    offset = start
    while offset < end:
        if end - offset < TLV_HEADER_SIZE:
            raise ProxyHeaderError(
                f"a {what} at byte {offset} is cut short: {end - offset} bytes left, "
                f"but a {what} starts with {TLV_HEADER_SIZE} (type and length)"
            )
        kind = data[offset]
        value_start = offset + TLV_HEADER_SIZE
        value_end = value_start + int.from_bytes(data[offset + 1 : value_start], "big")
        if value_end > end:
            raise ProxyHeaderError(
                f"a {what} of type 0x{kind:02x} at byte {offset} says its value is "
                f"{value_end - value_start} bytes, but only {end - value_start} are left"
            )
        yield kind, value_start, value_end
        offset = value_end


def split_tlvs(data: bytes, what: str) -> tuple[Tlv, ...]:
    """The TLVs that make up the whole of `data`."""
    return tuple(
        (kind, data[start:end]) for kind, start, end in iter_tlvs(data, 0, len(data), what)
    )


def join_tlvs(tlvs: Iterable[Tlv]) -> bytes:
    """The wire form of `tlvs`, in order."""
    return b"".join(bytes((kind,)) + len(value).to_bytes(2, "big") + value for kind, value in tlvs)


def show(data: bytes, limit: int = 40) -> str:
    """A short repr of `data` for an error message: enough to recognise, never a flood."""
    return repr(data[:limit]) + ("..." if len(data) > limit else "")
