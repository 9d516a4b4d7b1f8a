"""Decoding a PROXY protocol header from the bytes a connection has received so far.

`decode_proxy_header` is pure: call it again with everything received since the
connection opened. It never claims a byte past the header, so the client's first
bytes, which often arrive in the same segment, stay in ``data[size:]``.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket

import attrs

from .._errors import ConfigurationError, ProxyHeaderError
from . import _wire
from ._crc32c import header_checksum
from ._header import ProxyAddress, ProxyHeader, ProxyTLVType

__all__ = [
    "DEFAULT_MAX_SIZE",
    "ProxyHeaderDecoded",
    "ProxyHeaderIncomplete",
    "check_max_size",
    "decode_proxy_header",
]

# Far above what proxies send (HAProxy's largest, with SSL details and a unique id,
# is a few hundred bytes), and small enough that an unauthenticated peer cannot make
# the server buffer much before it is refused.
DEFAULT_MAX_SIZE = 4096
# Every v1 line must fit, whatever the limit, and a v2 header cannot say more.
_MIN_MAX_SIZE = _wire.V1_MAX_SIZE
_MAX_MAX_SIZE = _wire.V2_FIXED_SIZE + _wire.V2_MAX_LENGTH

# The shortest valid line for each v1 protocol ("PROXY TCP4 0.0.0.0 0.0.0.0 0 0\r\n"),
# so that a reader asks for more than two bytes at a time.
_V1_SHORTEST = {b"TCP4": 32, b"TCP6": 22}
_V1_FAMILIES = {b"TCP4": socket.AF_INET, b"TCP6": socket.AF_INET6}
# Section 2.1: decimal, and no leading zeros (they could be read as octal).
_V1_PORT = re.compile(rb"(?:0|[1-9][0-9]{0,4})\Z")
_V1_FIELDS = 6  # PROXY, protocol, source, destination, source port, destination port
_COMMANDS = {0x0: "LOCAL", 0x1: "PROXY"}
# Where the fixed part of a v2 header keeps its fields, after the 12-byte signature.
_VERSION_COMMAND_AT = 12
_FAMILY_AT = 13
_LENGTH_AT = 14


@attrs.frozen
class ProxyHeaderIncomplete:
    """The bytes so far are the start of a header: read at least `at_least` more.

    Reading exactly `at_least` bytes never reads past the header, so no byte of
    the client's own data is taken from the socket.
    """

    at_least: int
    """How many more bytes the header needs at the very least (1 or more)."""


@attrs.frozen
class ProxyHeaderDecoded:
    """A complete header at the start of the data."""

    header: ProxyHeader
    """The header."""
    size: int
    """How many bytes it took; the client's data starts at ``data[size:]``."""


def decode_proxy_header(
    data: bytes | bytearray | memoryview, *, max_size: int = DEFAULT_MAX_SIZE
) -> ProxyHeaderIncomplete | ProxyHeaderDecoded:
    """Decode the v1 or v2 PROXY header at the start of `data`.

    Returns `ProxyHeaderIncomplete` while `data` is a valid beginning, then
    `ProxyHeaderDecoded`. Raises `ProxyHeaderError` as soon as `data` cannot start a
    valid header: not a PROXY header, an unknown version or command, a malformed
    field, a CRC32C mismatch, or a v2 header longer than `max_size` bytes (refused
    from its first 16 bytes, before the rest is read). v1 lines are at most 107 bytes.
    """
    check_max_size("max_size", max_size)
    # Look at no more than a header can hold, however much payload follows it.
    head = bytes(memoryview(data)[:max_size])
    if not head:
        return ProxyHeaderIncomplete(_wire.V1_MIN_SIZE)
    if head[0] == _wire.V1_PREFIX[0]:
        return _decode_v1(head)
    if head[0] == _wire.V2_SIGNATURE[0]:
        return _decode_v2(head, max_size)
    raise _not_a_header(head)


def check_max_size(name: str, value: object) -> None:
    """Raise `ConfigurationError` unless `value` can be a header size limit."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigurationError(f"{name} must be an int number of bytes, not {value!r}")
    if not _MIN_MAX_SIZE <= value <= _MAX_MAX_SIZE:
        raise ConfigurationError(
            f"{name} must be between {_MIN_MAX_SIZE} (the longest v1 line) and "
            f"{_MAX_MAX_SIZE} (the longest v2 header), not {value}"
        )


def _not_a_header(head: bytes) -> ProxyHeaderError:
    return ProxyHeaderError(
        f"expected a PROXY protocol header, {_wire.V1_PREFIX!r} (v1) or "
        f"{_wire.V2_SIGNATURE!r} (v2), not {_wire.show(head)}; does the client connect "
        "directly instead of through the proxy?"
    )


def _expect_prefix(head: bytes, prefix: bytes) -> None:
    seen = min(len(head), len(prefix))
    if head[:seen] != prefix[:seen]:
        raise _not_a_header(head)


def _decode_v1(head: bytes) -> ProxyHeaderIncomplete | ProxyHeaderDecoded:
    _expect_prefix(head, _wire.V1_PREFIX)
    # The CR of a line that fits in V1_MAX_SIZE with its LF.
    cr = head.find(b"\r", 0, _wire.V1_MAX_SIZE - 1)
    lone_lf = head.find(b"\n", 0, _wire.V1_MAX_SIZE - 1 if cr == -1 else cr)
    if lone_lf != -1:
        raise ProxyHeaderError(
            f"a v1 PROXY header ends with CRLF, but byte {lone_lf} is a lone LF: "
            f"{_wire.show(head[: lone_lf + 1], _wire.V1_MAX_SIZE)}"
        )
    if cr == -1:
        protocol = head[len(_wire.V1_PREFIX) :][:4]
        shortest = _V1_SHORTEST.get(protocol, _wire.V1_MIN_SIZE)
        at_least = max(shortest - len(head), 2)  # at least the CRLF is still to come
        if len(head) + at_least > _wire.V1_MAX_SIZE:
            raise ProxyHeaderError(
                f"a v1 PROXY header is one line of at most {_wire.V1_MAX_SIZE} bytes, but "
                f"there is no CRLF in {_wire.show(head)}"
            )
        return ProxyHeaderIncomplete(at_least)
    if len(head) == cr + 1:
        return ProxyHeaderIncomplete(1)
    if head[cr + 1] != ord("\n"):
        raise ProxyHeaderError(
            f"a v1 PROXY header ends with CRLF, but its CR is followed by "
            f"{head[cr + 1 : cr + 2]!r}: {_wire.show(head[: cr + 2], _wire.V1_MAX_SIZE)}"
        )
    return ProxyHeaderDecoded(_parse_v1_line(head[:cr]), cr + 2)


def _parse_v1_line(line: bytes) -> ProxyHeader:
    fields = line.split(b" ")
    protocol = fields[1]
    # Section 2.1: after UNKNOWN the receiver ignores the rest of the line.
    if protocol == b"UNKNOWN":
        return ProxyHeader(version=1)
    family = _V1_FAMILIES.get(protocol)
    if family is None:
        raise ProxyHeaderError(
            f"a v1 PROXY header names TCP4, TCP6 or UNKNOWN, not {protocol!r}: {line!r}"
        )
    if len(fields) != _V1_FIELDS:
        raise ProxyHeaderError(
            f"a v1 {protocol.decode()} header has {_V1_FIELDS} fields separated by single "
            f"spaces (PROXY, protocol, addresses, ports), not {len(fields)}: {line!r}"
        )
    _, _, source_host, destination_host, source_port, destination_port = fields
    return ProxyHeader(
        version=1,
        family=family,
        source=(_v1_text("source address", source_host), _v1_port("source", source_port)),
        destination=(
            _v1_text("destination address", destination_host),
            _v1_port("destination", destination_port),
        ),
    )


def _v1_text(name: str, field: bytes) -> str:
    try:
        return field.decode("ascii")
    except UnicodeDecodeError:
        raise ProxyHeaderError(f"the v1 {name} must be US-ASCII, not {field!r}") from None


def _v1_port(name: str, field: bytes) -> int:
    if not _V1_PORT.match(field):
        raise ProxyHeaderError(
            f"the v1 {name} port must be a decimal number without leading zeros, not {field!r}"
        )
    return int(field)


def _decode_v2(head: bytes, max_size: int) -> ProxyHeaderIncomplete | ProxyHeaderDecoded:
    _expect_prefix(head, _wire.V2_SIGNATURE)
    _refuse_early(head)
    if len(head) < _wire.V2_FIXED_SIZE:
        return ProxyHeaderIncomplete(_wire.V2_FIXED_SIZE - len(head))
    length = int.from_bytes(head[_LENGTH_AT : _wire.V2_FIXED_SIZE], "big")
    size = _wire.V2_FIXED_SIZE + length
    if size > max_size:
        raise ProxyHeaderError(
            f"the v2 PROXY header says it is {size} bytes (16 + length {length}), over "
            f"max_size={max_size}; raise max_size if the proxy sends this much"
        )
    if len(head) < size:
        return ProxyHeaderIncomplete(size - len(head))
    header = head[:size]
    if _command(header[_VERSION_COMMAND_AT]) == "LOCAL":
        local = ProxyHeader(version=2, command="LOCAL", tlvs=_local_tlvs(header))
        return ProxyHeaderDecoded(local, size)
    family, protocol = _family(header[_FAMILY_AT])
    tlv_start = _wire.V2_FIXED_SIZE + _wire.ADDRESS_BLOCK_SIZES[family]
    if tlv_start > size:
        raise ProxyHeaderError(
            f"a v2 {family.name} header has {tlv_start - _wire.V2_FIXED_SIZE} bytes of "
            f"addresses, but its length is {length}"
        )
    source, destination = _addresses(family, header[_wire.V2_FIXED_SIZE : tlv_start])
    proxied = ProxyHeader(
        version=2,
        source=source,
        destination=destination,
        family=family,
        protocol=protocol,
        tlvs=_tlvs(header, tlv_start),
    )
    return ProxyHeaderDecoded(proxied, size)


def _refuse_early(head: bytes) -> None:
    """Refuse a bad version, command or family as soon as its byte has arrived."""
    if len(head) > _VERSION_COMMAND_AT:
        command = _command(head[_VERSION_COMMAND_AT])
        # A LOCAL header's family byte is ignored, so only a PROXY one can be wrong.
        if command == "PROXY" and len(head) > _FAMILY_AT:
            _family(head[_FAMILY_AT])


def _command(version_command: int) -> str:
    version, command = version_command >> 4, version_command & 0x0F
    if version != 2:
        raise ProxyHeaderError(
            f"unknown PROXY protocol version {version} after the v2 signature "
            f"(byte 0x{version_command:02x}); the binary header is version 2"
        )
    if command not in _COMMANDS:
        raise ProxyHeaderError(
            f"unknown v2 PROXY command 0x{command:x}; only LOCAL (0x0) and PROXY (0x1) exist"
        )
    return _COMMANDS[command]


def _family(family_byte: int) -> tuple[socket.AddressFamily, socket.SocketKind | None]:
    pair = _wire.FAMILIES.get(family_byte)
    if pair is None:
        known = ", ".join(f"0x{code:02x}" for code in _wire.FAMILIES)
        raise ProxyHeaderError(
            f"unknown v2 family and protocol byte 0x{family_byte:02x}; the spec defines {known}"
        )
    return pair


def _addresses(
    family: socket.AddressFamily, block: bytes
) -> tuple[ProxyAddress | None, ProxyAddress | None]:
    if family == socket.AF_UNSPEC:
        return None, None
    if family == socket.AF_UNIX:
        half = _wire.UNIX_ADDRESS_SIZE
        return _unix_path(block[:half]), _unix_path(block[half:])
    size = 4 if family == socket.AF_INET else 16
    ports = 2 * size
    return (
        (str(ipaddress.ip_address(block[:size])), int.from_bytes(block[ports : ports + 2], "big")),
        (
            str(ipaddress.ip_address(block[size:ports])),
            int.from_bytes(block[ports + 2 : ports + 4], "big"),
        ),
    )


def _unix_path(field: bytes) -> str:
    # sun_path as the proxy copied it: a path ends at its first NUL; an abstract
    # name starts with one and runs to the NUL padding.
    if field[:1] == b"\0":
        name = field[1:].rstrip(b"\0")
        return "\0" + os.fsdecode(name) if name else ""
    return os.fsdecode(field.split(b"\0", 1)[0])


def _tlvs(header: bytes, start: int) -> tuple[_wire.Tlv, ...]:
    tlvs: list[_wire.Tlv] = []
    for kind, value_start, value_end in _wire.iter_tlvs(header, start, len(header), "TLV"):
        value = header[value_start:value_end]
        # A CRC32C of another length is refused by ProxyHeader, with its own message.
        if kind == ProxyTLVType.CRC32C and len(value) == 4:
            _verify_checksum(header, value_start)
        tlvs.append((kind, value))
    return tuple(tlvs)


def _local_tlvs(header: bytes) -> tuple[_wire.Tlv, ...]:
    # Section 2.2: a LOCAL header's family and addresses are ignored, but TLVs may
    # follow them. Where they start is known only for a family the spec defines, and
    # a block shorter than that family's addresses holds none.
    pair = _wire.FAMILIES.get(header[_FAMILY_AT])
    if pair is None:
        return ()
    start = _wire.V2_FIXED_SIZE + _wire.ADDRESS_BLOCK_SIZES[pair[0]]
    return _tlvs(header, start)


def _verify_checksum(header: bytes, value_start: int) -> None:
    sent = int.from_bytes(header[value_start : value_start + 4], "big")
    computed = header_checksum(header, value_start)
    if sent != computed:
        raise ProxyHeaderError(
            f"the v2 PROXY header's CRC32C is 0x{sent:08x}, but its bytes sum to "
            f"0x{computed:08x}: the header was damaged or altered"
        )
