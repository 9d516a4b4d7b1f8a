"""Writing a `ProxyHeader` as the bytes a proxy sends (for tests and test clients)."""

from __future__ import annotations

import os
import socket

from . import _wire
from ._crc32c import header_checksum
from ._header import ProxyAddress, ProxyHeader, ProxyTLVType

__all__ = ["encode_proxy_header"]

_V1_PROTOCOLS = {socket.AF_INET: "TCP4", socket.AF_INET6: "TCP6"}


def encode_proxy_header(header: ProxyHeader) -> bytes:
    """The bytes of `header`, v1 text or v2 binary as its `version` says.

    A CRC32C TLV in ``header.tlvs`` is filled in with the header's checksum, so
    ``(ProxyTLVType.CRC32C, bytes(4))`` asks for one.
    """
    if header.version == 1:
        return _encode_v1(header)
    return _encode_v2(header)


def _encode_v1(header: ProxyHeader) -> bytes:
    if header.family == socket.AF_UNSPEC:
        return b"PROXY UNKNOWN\r\n"
    source_host, source_port = _inet(header.source)
    destination_host, destination_port = _inet(header.destination)
    line = (
        f"PROXY {_V1_PROTOCOLS[header.family]} {source_host} {destination_host} "
        f"{source_port} {destination_port}\r\n"
    )
    return line.encode("ascii")


def _encode_v2(header: ProxyHeader) -> bytes:
    command = 0x21 if header.command == "PROXY" else 0x20  # version 2 in the high nibble
    addresses = _address_block(header)
    body = addresses + _wire.join_tlvs(header.tlvs)
    data = bytearray(
        _wire.V2_SIGNATURE
        + bytes((command, _wire.FAMILY_BYTES[header.family, header.protocol]))
        + len(body).to_bytes(2, "big")
        + body
    )
    tlv_start = _wire.V2_FIXED_SIZE + len(addresses)
    for kind, value_start, _ in _wire.iter_tlvs(bytes(data), tlv_start, len(data), "TLV"):
        if kind == ProxyTLVType.CRC32C:
            checksum = header_checksum(bytes(data), value_start)
            data[value_start : value_start + 4] = checksum.to_bytes(4, "big")
    return bytes(data)


def _address_block(header: ProxyHeader) -> bytes:
    if header.family == socket.AF_UNSPEC:
        return b""
    if header.family == socket.AF_UNIX:
        return _unix(header.source) + _unix(header.destination)
    (source_host, source_port), (destination_host, destination_port) = (
        _inet(header.source),
        _inet(header.destination),
    )
    return (
        socket.inet_pton(header.family, source_host)
        + socket.inet_pton(header.family, destination_host)
        + source_port.to_bytes(2, "big")
        + destination_port.to_bytes(2, "big")
    )


def _inet(address: ProxyAddress | None) -> tuple[str, int]:
    assert isinstance(address, tuple), "ProxyHeader checked the address against its family"
    return address


def _unix(address: ProxyAddress | None) -> bytes:
    assert isinstance(address, str), "ProxyHeader checked the address against its family"
    return os.fsencode(address).ljust(_wire.UNIX_ADDRESS_SIZE, b"\0")
