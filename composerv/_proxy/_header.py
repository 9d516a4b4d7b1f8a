"""A PROXY protocol header as an immutable value: `ProxyHeader`, its TLVs, `ProxySSL`.

A header that exists can be sent: construction checks everything the wire format
needs, so `encode_proxy_header` never fails and the TLV accessors never raise.
"""

from __future__ import annotations

import enum
import ipaddress
import os
import socket
from collections.abc import Callable, Iterable, Mapping
from typing import Literal

import attrs

from .._errors import ProxyHeaderError
from .._validate import is_tuple
from . import _wire
from ._wire import Tlv

__all__ = [
    "ProxyAddress",
    "ProxyHeader",
    "ProxySSL",
    "ProxySSLClient",
    "ProxySSLSubtype",
    "ProxyTLVType",
]

ProxyAddress = tuple[str, int] | str
"""An endpoint as Python sockets write it: ``(host, port)`` for IPv4 and IPv6, a path
for AF_UNIX (``""`` when unnamed, a leading NUL for Linux's abstract namespace)."""


class ProxyTLVType(enum.IntEnum):
    """The TLV types the spec registers (section 2.2); others are kept as plain ints."""

    ALPN = 0x01
    AUTHORITY = 0x02
    CRC32C = 0x03
    NOOP = 0x04
    UNIQUE_ID = 0x05
    SSL = 0x20
    NETNS = 0x30


class ProxySSLSubtype(enum.IntEnum):
    """The TLV types found inside an SSL TLV (section 2.2.6)."""

    VERSION = 0x21
    CN = 0x22
    CIPHER = 0x23
    SIG_ALG = 0x24
    KEY_ALG = 0x25


class ProxySSLClient(enum.IntFlag):
    """The bits of `ProxySSL.client`: what the client presented to the proxy."""

    SSL = 0x01
    """It connected over TLS."""
    CERT_CONN = 0x02
    """It presented a certificate on this connection."""
    CERT_SESS = 0x04
    """It presented a certificate at least once in this TLS session."""


# The encoding the spec gives each text TLV. A value that does not decode is refused
# at construction, so that the accessors below always return text.
_TEXT_TLVS: Mapping[int, str] = {ProxyTLVType.AUTHORITY: "utf-8", ProxyTLVType.NETNS: "ascii"}
_TEXT_SSL_SUBTYPES: Mapping[int, str] = {
    ProxySSLSubtype.VERSION: "ascii",
    ProxySSLSubtype.CN: "utf-8",
    ProxySSLSubtype.CIPHER: "ascii",
    ProxySSLSubtype.SIG_ALG: "ascii",
    ProxySSLSubtype.KEY_ALG: "ascii",
}
# The SSL TLV's value opens with a one-byte client field and a 32-bit verify result.
_SSL_FIXED_SIZE = 5


def _tlv_pairs(tlvs: Iterable[Tlv]) -> tuple[Tlv, ...]:
    """Check and normalise TLVs to a tuple of ``(int, bytes)``."""
    if isinstance(tlvs, (str, bytes)) or not isinstance(tlvs, Iterable):
        raise ProxyHeaderError(f"tlvs must be a sequence of (type, bytes) pairs, not {tlvs!r}")
    pairs: list[Tlv] = []
    for pair in tlvs:
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise ProxyHeaderError(f"each TLV must be a (type, bytes) pair, not {pair!r}")
        kind, value = pair
        if isinstance(kind, bool) or not isinstance(kind, int) or not 0 <= kind <= 0xFF:
            raise ProxyHeaderError(f"a TLV type must be an int from 0 to 255, not {kind!r}")
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise ProxyHeaderError(f"the value of TLV 0x{kind:02x} must be bytes, not {value!r}")
        if len(value) > _wire.V2_MAX_LENGTH:
            raise ProxyHeaderError(
                f"the value of TLV 0x{kind:02x} is {len(value)} bytes, over the 65535 a TLV holds"
            )
        pairs.append((int(kind), bytes(value)))
    return tuple(pairs)


def _first(tlvs: tuple[Tlv, ...], kind: int) -> bytes | None:
    return next((value for found, value in tlvs if found == kind), None)


def _check_text(tlvs: tuple[Tlv, ...], encodings: Mapping[int, str], where: str) -> None:
    for kind, value in tlvs:
        if kind in encodings:
            try:
                value.decode(encodings[kind])
            except UnicodeDecodeError:
                raise ProxyHeaderError(
                    f"{where} 0x{kind:02x} must be {encodings[kind]} text, not {_wire.show(value)}"
                ) from None


def _text(tlvs: tuple[Tlv, ...], kind: int, encodings: Mapping[int, str]) -> str | None:
    value = _first(tlvs, kind)
    return None if value is None else value.decode(encodings[kind])


def _uint(bits: int) -> Callable[[object, attrs.Attribute[int], object], None]:
    def check(_instance: object, attribute: attrs.Attribute[int], value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << bits:
            raise ProxyHeaderError(
                f"ProxySSL {attribute.name} must be an int from 0 to {(1 << bits) - 1}, "
                f"not {value!r}"
            )

    return check


@attrs.frozen(kw_only=True)
class ProxySSL:
    """The value of an SSL TLV (type 0x20): how the client reached the proxy over TLS.

    Read it with `ProxyHeader.ssl`; send one with
    ``(ProxyTLVType.SSL, ProxySSL(client=..., verify=0).to_bytes())`` in `ProxyHeader.tlvs`.
    """

    client: int = attrs.field(validator=_uint(8))
    """A bit field of `ProxySSLClient` flags."""
    verify: int = attrs.field(validator=_uint(32))
    """0 if the client presented a certificate and it was verified, non-zero otherwise."""
    tlvs: tuple[Tlv, ...] = attrs.field(default=(), converter=_tlv_pairs)
    """The sub-TLVs, ``(type, value)`` in the order sent; see `ProxySSLSubtype`."""

    def __attrs_post_init__(self) -> None:
        _check_text(self.tlvs, _TEXT_SSL_SUBTYPES, "SSL sub-TLV")
        if _SSL_FIXED_SIZE + len(_wire.join_tlvs(self.tlvs)) > _wire.V2_MAX_LENGTH:
            raise ProxyHeaderError("ProxySSL sub-TLVs are over the 65535 bytes a TLV holds")

    @classmethod
    def from_bytes(cls, value: bytes) -> ProxySSL:
        """Parse the value of an SSL TLV; `ProxyHeaderError` if it is malformed."""
        if len(value) < _SSL_FIXED_SIZE:
            raise ProxyHeaderError(
                f"an SSL TLV holds at least {_SSL_FIXED_SIZE} bytes (client, verify), "
                f"not {len(value)}: {_wire.show(value)}"
            )
        return cls(
            client=value[0],
            verify=int.from_bytes(value[1:_SSL_FIXED_SIZE], "big"),
            tlvs=_wire.split_tlvs(value[_SSL_FIXED_SIZE:], "SSL sub-TLV"),
        )

    def to_bytes(self) -> bytes:
        """The value of the SSL TLV, as sent."""
        return bytes((self.client,)) + self.verify.to_bytes(4, "big") + _wire.join_tlvs(self.tlvs)

    @property
    def version(self) -> str | None:
        """The TLS version, e.g. ``"TLSv1.3"``."""
        return _text(self.tlvs, ProxySSLSubtype.VERSION, _TEXT_SSL_SUBTYPES)

    @property
    def cn(self) -> str | None:
        """The Common Name of the client certificate's subject."""
        return _text(self.tlvs, ProxySSLSubtype.CN, _TEXT_SSL_SUBTYPES)

    @property
    def cipher(self) -> str | None:
        """The cipher, e.g. ``"ECDHE-RSA-AES128-GCM-SHA256"``."""
        return _text(self.tlvs, ProxySSLSubtype.CIPHER, _TEXT_SSL_SUBTYPES)

    @property
    def sig_alg(self) -> str | None:
        """The algorithm that signed the proxy's own certificate, e.g. ``"RSA-SHA256"``."""
        return _text(self.tlvs, ProxySSLSubtype.SIG_ALG, _TEXT_SSL_SUBTYPES)

    @property
    def key_alg(self) -> str | None:
        """The algorithm of the proxy's own certificate key, e.g. ``"RSA2048"``."""
        return _text(self.tlvs, ProxySSLSubtype.KEY_ALG, _TEXT_SSL_SUBTYPES)


def _canonical_address(address: ProxyAddress | None) -> ProxyAddress | None:
    """Write IP hosts the way `ipaddress` does, so equal addresses compare equal."""
    if isinstance(address, tuple) and len(address) == 2 and isinstance(address[0], str):
        try:
            return (str(ipaddress.ip_address(address[0])), address[1])
        except ValueError:
            return address  # refused with a message naming the family in _check_address
    return address


def _family_of_source(header: ProxyHeader) -> socket.AddressFamily:
    source = header.source
    if source is None:
        return socket.AF_UNSPEC
    if isinstance(source, str):
        return socket.AF_UNIX
    return socket.AF_INET6 if ":" in str(source[0]) else socket.AF_INET


def _stream_unless_unspec(header: ProxyHeader) -> socket.SocketKind | None:
    return None if header.family == socket.AF_UNSPEC else socket.SOCK_STREAM


_IP_VERSIONS = {socket.AF_INET: 4, socket.AF_INET6: 6}


def _check_address(name: str, address: object, family: socket.AddressFamily) -> None:
    if family == socket.AF_UNSPEC:
        if address is not None:
            raise ProxyHeaderError(
                f"ProxyHeader {name} must be None when family is AF_UNSPEC (a LOCAL or "
                f"UNKNOWN header), not {address!r}"
            )
    elif family == socket.AF_UNIX:
        _check_unix_address(name, address)
    else:
        _check_inet_address(name, address, family)


def _check_inet_address(name: str, address: object, family: socket.AddressFamily) -> None:
    if not (is_tuple(address) and len(address) == 2 and isinstance(host := address[0], str)):
        raise ProxyHeaderError(
            f"ProxyHeader {name} must be a (host, port) tuple for {family.name}, not {address!r}"
        )
    port = address[1]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is None or ip.version != _IP_VERSIONS[family] or "%" in host:
        raise ProxyHeaderError(
            f"ProxyHeader {name} host must be an IPv{_IP_VERSIONS[family]} address "
            f"(family {family.name}), not {host!r}"
        )
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 0xFFFF:
        raise ProxyHeaderError(
            f"ProxyHeader {name} port must be an int from 0 to 65535, not {port!r}"
        )


def _check_unix_address(name: str, path: object) -> None:
    if not isinstance(path, str):
        raise ProxyHeaderError(f"ProxyHeader {name} must be a str path for AF_UNIX, not {path!r}")
    try:
        size = len(os.fsencode(path))
    except UnicodeEncodeError:
        raise ProxyHeaderError(
            f"ProxyHeader {name} {path!r} cannot be encoded as a file system path"
        ) from None
    if size > _wire.UNIX_ADDRESS_SIZE:
        raise ProxyHeaderError(
            f"ProxyHeader {name} is {size} bytes, over the {_wire.UNIX_ADDRESS_SIZE} "
            f"a v2 header holds: {path!r}"
        )
    # The wire pads with NULs, so a name ending in one would come back shorter.
    if path.startswith("\0"):
        if path.endswith("\0"):
            raise ProxyHeaderError(
                f"ProxyHeader {name} {path!r} is an abstract name ending in NUL, "
                "which the header's NUL padding cannot carry"
            )
    elif "\0" in path:
        raise ProxyHeaderError(f"ProxyHeader {name} {path!r} has a NUL inside the path")


@attrs.frozen(kw_only=True)
class ProxyHeader:
    """What a proxy says about the connection it relays (a PROXY protocol header).

    ``ProxyHeader(version=2, source=("192.0.2.7", 51000), destination=("10.0.0.1", 443))``
    is a v2 TCP over IPv4 header: `family` is read from `source` and `protocol`
    defaults to SOCK_STREAM. ``ProxyHeader(version=2, command="LOCAL")`` is what a
    proxy's health check sends, and ``ProxyHeader(version=1)`` is ``PROXY UNKNOWN``.
    Invalid combinations raise `ProxyHeaderError` naming the field.
    """

    version: Literal[1, 2]
    """1, the text format, or 2, the binary format."""
    command: Literal["PROXY", "LOCAL"] = "PROXY"
    """``"PROXY"``: relayed on behalf of `source`. ``"LOCAL"`` (v2 only): the proxy's own
    connection, e.g. a health check; the receiver uses the socket's real endpoints."""
    source: ProxyAddress | None = attrs.field(default=None, converter=_canonical_address)
    """The client's address, or None for LOCAL and UNKNOWN (AF_UNSPEC) headers."""
    destination: ProxyAddress | None = attrs.field(default=None, converter=_canonical_address)
    """The address the client connected to (on the proxy), or None like `source`."""
    family: socket.AddressFamily = attrs.field(
        default=attrs.Factory(_family_of_source, takes_self=True)
    )
    """AF_INET, AF_INET6, AF_UNIX, or AF_UNSPEC when no addresses are carried."""
    protocol: socket.SocketKind | None = attrs.field(
        default=attrs.Factory(_stream_unless_unspec, takes_self=True)
    )
    """SOCK_STREAM or SOCK_DGRAM; None with AF_UNSPEC."""
    tlvs: tuple[Tlv, ...] = attrs.field(default=(), converter=_tlv_pairs)
    """v2's extensions as ``(type, value)`` in the order sent; see `ProxyTLVType`."""

    def __attrs_post_init__(self) -> None:
        if self.version not in (1, 2) or isinstance(self.version, bool):
            raise ProxyHeaderError(f"ProxyHeader version must be 1 or 2, not {self.version!r}")
        if self.command not in ("PROXY", "LOCAL"):
            raise ProxyHeaderError(
                f"ProxyHeader command must be 'PROXY' or 'LOCAL', not {self.command!r}"
            )
        if not (
            isinstance(self.family, socket.AddressFamily)
            and (self.protocol is None or isinstance(self.protocol, socket.SocketKind))
            and (self.family, self.protocol) in _wire.FAMILY_BYTES
        ):
            raise ProxyHeaderError(
                "ProxyHeader family and protocol must be AF_INET, AF_INET6 or AF_UNIX with "
                "SOCK_STREAM or SOCK_DGRAM, or AF_UNSPEC with None, not "
                f"{self.family!r} with {self.protocol!r}"
            )
        self._check_version()
        _check_address("source", self.source, self.family)
        _check_address("destination", self.destination, self.family)
        self._check_tlvs()

    def _check_version(self) -> None:
        if self.command == "LOCAL" and self.version == 1:
            raise ProxyHeaderError(
                "ProxyHeader command 'LOCAL' exists in version 2 only; the v1 header "
                "without addresses is 'PROXY UNKNOWN': ProxyHeader(version=1)"
            )
        if self.command == "LOCAL" and self.family != socket.AF_UNSPEC:
            raise ProxyHeaderError(
                "a LOCAL ProxyHeader carries no addresses (the receiver uses the socket's "
                f"own), so its source must be None, not {self.source!r}"
            )
        if self.version == 1 and (
            self.protocol == socket.SOCK_DGRAM or self.family == socket.AF_UNIX
        ):
            raise ProxyHeaderError(
                f"a version 1 ProxyHeader carries TCP over IPv4 or IPv6 only, not "
                f"{self.family.name} with {self.protocol!r}; use version=2"
            )
        if self.version == 1 and self.tlvs:
            raise ProxyHeaderError(
                f"a version 1 ProxyHeader has no TLVs, not {self.tlvs!r}; use version=2"
            )

    def _check_tlvs(self) -> None:
        _check_text(self.tlvs, _TEXT_TLVS, "TLV")
        checksums = [value for kind, value in self.tlvs if kind == ProxyTLVType.CRC32C]
        if len(checksums) > 1 or any(len(value) != 4 for value in checksums):
            raise ProxyHeaderError(
                "a ProxyHeader has at most one CRC32C TLV, of 4 bytes; the encoder fills it "
                f"in (pass bytes(4)), not {checksums!r}"
            )
        for kind, value in self.tlvs:
            if kind == ProxyTLVType.SSL:
                ProxySSL.from_bytes(value)
        length = _wire.ADDRESS_BLOCK_SIZES[self.family] + len(_wire.join_tlvs(self.tlvs))
        if length > _wire.V2_MAX_LENGTH:
            raise ProxyHeaderError(
                f"a ProxyHeader's addresses and TLVs are {length} bytes, over the 65535 "
                "a v2 header holds"
            )

    def tlv(self, kind: int) -> bytes | None:
        """The value of the first TLV of type `kind`, or None if there is none."""
        return _first(self.tlvs, kind)

    @property
    def alpn(self) -> bytes | None:
        """The application protocol the client negotiated (TLS ALPN), e.g. ``b"h2"``."""
        return self.tlv(ProxyTLVType.ALPN)

    @property
    def authority(self) -> str | None:
        """The host name the client asked for (TLS SNI, for instance)."""
        return _text(self.tlvs, ProxyTLVType.AUTHORITY, _TEXT_TLVS)

    @property
    def unique_id(self) -> bytes | None:
        """An opaque id the proxy gave the connection, to correlate logs across layers."""
        return self.tlv(ProxyTLVType.UNIQUE_ID)

    @property
    def ssl(self) -> ProxySSL | None:
        """What the proxy says about the client's TLS connection, if it said anything."""
        value = self.tlv(ProxyTLVType.SSL)
        return None if value is None else ProxySSL.from_bytes(value)

    @property
    def netns(self) -> str | None:
        """The name of the network namespace the proxy accepted the connection in."""
        return _text(self.tlvs, ProxyTLVType.NETNS, _TEXT_TLVS)
