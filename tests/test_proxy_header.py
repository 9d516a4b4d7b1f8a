"""The PROXY protocol header: decoding in any number of pieces, encoding, and refusing bad input."""

from __future__ import annotations

import io
import os
import socket
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from composerv._errors import ComposervError, ConfigurationError, ProxyHeaderError
from composerv._proxy import (
    DEFAULT_MAX_SIZE,
    ProxyHeader,
    ProxyHeaderDecoded,
    ProxyHeaderIncomplete,
    ProxySSL,
    ProxySSLClient,
    ProxySSLSubtype,
    ProxyTLVType,
    decode_proxy_header,
    encode_proxy_header,
)
from composerv._proxy._crc32c import crc32c

SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
# The types whose values ProxyHeader checks; any other type takes any bytes.
STRUCTURED = {ProxyTLVType.AUTHORITY, ProxyTLVType.CRC32C, ProxyTLVType.SSL, ProxyTLVType.NETNS}

ports = st.integers(0, 0xFFFF)
ipv4 = st.tuples(st.ip_addresses(v=4).map(str), ports)
ipv6 = st.tuples(st.ip_addresses(v=6).map(str), ports)
_path_text = st.text(st.characters(codec="utf-8", exclude_characters="\0"), max_size=40)
unix_paths = st.one_of(
    _path_text.filter(lambda path: len(os.fsencode(path)) <= 108),
    _path_text.map(lambda name: "\0" + name).filter(
        lambda path: len(path) > 1 and len(os.fsencode(path)) <= 108
    ),
)
ascii_text = st.text(st.characters(codec="ascii"), max_size=20).map(str.encode)
utf8_text = st.text(st.characters(codec="utf-8"), max_size=20).map(str.encode)

ssl_values = st.builds(
    ProxySSL,
    client=st.integers(0, 0xFF),
    verify=st.integers(0, 0xFFFFFFFF),
    tlvs=st.lists(
        st.one_of(
            st.tuples(
                st.sampled_from([ProxySSLSubtype.VERSION, ProxySSLSubtype.CIPHER]), ascii_text
            ),
            st.tuples(st.just(ProxySSLSubtype.CN), utf8_text),
            st.tuples(st.integers(0, 0x20), st.binary(max_size=20)),
        ),
        max_size=4,
    ),
).map(ProxySSL.to_bytes)

tlvs = st.lists(
    st.one_of(
        st.tuples(
            st.integers(0, 0xFF).filter(lambda kind: kind not in STRUCTURED), st.binary(max_size=64)
        ),
        st.tuples(st.just(ProxyTLVType.AUTHORITY), utf8_text),
        st.tuples(st.just(ProxyTLVType.NETNS), ascii_text),
        st.tuples(st.just(ProxyTLVType.SSL), ssl_values),
    ),
    max_size=5,
)


@st.composite
def v2_tlvs(draw: st.DrawFn) -> list[tuple[int, bytes]]:
    """TLVs, sometimes with a CRC32C (left for the encoder to fill in) somewhere among them."""
    chosen = draw(tlvs)
    if draw(st.booleans()):
        chosen.insert(draw(st.integers(0, len(chosen))), (ProxyTLVType.CRC32C, bytes(4)))
    return chosen


v1_headers = st.one_of(
    st.builds(ProxyHeader, version=st.just(1)),
    st.builds(ProxyHeader, version=st.just(1), source=ipv4, destination=ipv4),
    st.builds(ProxyHeader, version=st.just(1), source=ipv6, destination=ipv6),
)
v2_headers = st.one_of(
    st.builds(ProxyHeader, version=st.just(2), command=st.just("LOCAL"), tlvs=v2_tlvs()),
    st.builds(ProxyHeader, version=st.just(2), tlvs=v2_tlvs()),
    *(
        st.builds(
            ProxyHeader,
            version=st.just(2),
            source=addresses,
            destination=addresses,
            protocol=st.sampled_from([socket.SOCK_STREAM, socket.SOCK_DGRAM]),
            tlvs=v2_tlvs(),
        )
        for addresses in (ipv4, ipv6, unix_paths)
    ),
)
headers = st.one_of(v1_headers, v2_headers)
payloads = st.binary(max_size=64)


def filled_in(header: ProxyHeader) -> ProxyHeader:
    """`header` with the checksum the encoder wrote into its CRC32C TLV, if it has one."""
    sent = decode_proxy_header(encode_proxy_header(header))
    assert isinstance(sent, ProxyHeaderDecoded)
    checksums = [value for kind, value in sent.header.tlvs if kind == ProxyTLVType.CRC32C]
    return attrs.evolve(
        header,
        tlvs=[
            (kind, checksums[0] if kind == ProxyTLVType.CRC32C else value)
            for kind, value in header.tlvs
        ],
    )


def decode_whole(data: bytes, **options: Any) -> ProxyHeaderDecoded:
    result = decode_proxy_header(data, **options)
    assert isinstance(result, ProxyHeaderDecoded), result
    return result


def assert_honest(data: bytes, max_size: int = DEFAULT_MAX_SIZE) -> None:
    """Decoding `data` raises only ProxyHeaderError, and claims only bytes it was given.

    If it finds a header, every shorter prefix is a beginning that asks for no
    byte past that header's end.
    """
    try:
        result = decode_proxy_header(data, max_size=max_size)
    except ProxyHeaderError:
        return
    if isinstance(result, ProxyHeaderIncomplete):
        assert result.at_least >= 1
        return
    assert 0 < result.size <= len(data)
    for end in range(result.size):
        before = decode_proxy_header(data[:end], max_size=max_size)
        assert isinstance(before, ProxyHeaderIncomplete), (end, before)
        assert end + before.at_least <= result.size, (end, before)


@given(headers, payloads)
@settings(deadline=None)
def test_encoding_then_decoding_gives_the_header_back(header: ProxyHeader, payload: bytes) -> None:
    encoded = encode_proxy_header(header)
    decoded = decode_whole(encoded + payload)
    assert decoded.size == len(encoded)
    assert decoded.header == filled_in(header)
    assert encode_proxy_header(decoded.header) == encoded


@given(headers, payloads, st.lists(st.integers(1, 300), max_size=40))
@settings(deadline=None)
def test_any_split_gives_the_same_header_and_size(
    header: ProxyHeader, payload: bytes, pieces: list[int]
) -> None:
    data = encode_proxy_header(header) + payload
    whole = decode_whole(data)
    received = b""
    result: ProxyHeaderIncomplete | ProxyHeaderDecoded = ProxyHeaderIncomplete(1)
    for piece in [*pieces, len(data)]:
        received = data[: len(received) + piece]
        result = decode_proxy_header(received)
        if isinstance(result, ProxyHeaderDecoded):
            break
        assert len(received) + result.at_least <= whole.size
    assert result == whole


@given(headers, payloads)
@settings(deadline=None)
def test_reading_what_it_asks_for_stops_exactly_at_the_payload(
    header: ProxyHeader, payload: bytes
) -> None:
    stream = io.BytesIO(encode_proxy_header(header) + payload)
    received = b""
    while isinstance(result := decode_proxy_header(received), ProxyHeaderIncomplete):
        received += stream.read(result.at_least)
    assert result.header == filled_in(header)
    assert stream.read() == payload


@given(headers)
@settings(deadline=None)
def test_every_prefix_of_a_header_asks_for_no_more_than_the_rest(header: ProxyHeader) -> None:
    assert_honest(encode_proxy_header(header))


beginnings = st.sampled_from(
    [
        b"",
        b"PROXY ",
        b"PROXY TCP4 ",
        b"PROXY TCP6 ",
        b"PROXY UNKNOWN",
        SIGNATURE,
        SIGNATURE + b"\x21\x11",
    ]
)


@given(beginnings, st.binary(max_size=300))
def test_random_bytes_raise_only_proxy_header_errors(beginning: bytes, rest: bytes) -> None:
    assert_honest(beginning + rest)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(encode_proxy_header(draw(headers)) + draw(payloads))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["replace", "insert", "delete", "truncate"]))
        if action == "replace" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif action == "insert":
            data.insert(at, draw(st.integers(0, 255)))
        elif action == "delete" and at < len(data):
            del data[at]
        elif action == "truncate":
            del data[at:]
    return bytes(data)


@given(mutated(), st.integers(107, 600))
@settings(deadline=None)
def test_mutated_headers_raise_only_proxy_header_errors(data: bytes, max_size: int) -> None:
    assert_honest(data, max_size)


@given(v2_headers, st.integers(107, 400))
@settings(deadline=None)
def test_an_oversized_v2_header_is_refused_from_its_first_16_bytes(
    header: ProxyHeader, max_size: int
) -> None:
    encoded = encode_proxy_header(header)
    assert isinstance(decode_proxy_header(encoded[:15], max_size=max_size), ProxyHeaderIncomplete)
    if len(encoded) > max_size:
        with pytest.raises(ProxyHeaderError, match=f"over max_size={max_size}"):
            decode_proxy_header(encoded[:16], max_size=max_size)
    else:
        assert decode_whole(encoded, max_size=max_size).size == len(encoded)


def test_a_v1_line_without_crlf_is_refused_before_107_bytes() -> None:
    line = b"PROXY UNKNOWN " + b"f" * 200
    assert decode_proxy_header(line[:105]) == ProxyHeaderIncomplete(2)
    with pytest.raises(ProxyHeaderError, match="at most 107 bytes, but there is no CRLF"):
        decode_proxy_header(line[:106])
    longest = b"PROXY UNKNOWN " + b"f" * 91 + b"\r\n"
    assert decode_whole(longest).size == 107


def test_the_spec_examples() -> None:
    # The v1 example of section 2.1, and a v2 header HAProxy sent (taken from a packet capture).
    v1 = decode_whole(b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n")
    assert v1.header == ProxyHeader(
        version=1, source=("192.168.0.1", 56324), destination=("192.168.0.11", 443)
    )
    assert v1.size == 47
    v2 = decode_whole(
        bytes.fromhex("0d0a0d0a000d0a515549540a2111000cac130001ac130003a6520050") + b"GET"
    )
    assert v2 == ProxyHeaderDecoded(
        ProxyHeader(version=2, source=("172.19.0.1", 42578), destination=("172.19.0.3", 80)), 28
    )


def test_crc32c_check_value() -> None:
    assert crc32c(b"123456789") == 0xE3069283  # the check value of CRC-32C (RFC 3720, B.4)


def test_tlv_helpers() -> None:
    ssl = ProxySSL(
        client=ProxySSLClient.SSL | ProxySSLClient.CERT_CONN,
        verify=0,
        tlvs=[
            (ProxySSLSubtype.VERSION, b"TLSv1.3"),
            (ProxySSLSubtype.CN, "cliënt".encode()),
            (ProxySSLSubtype.CIPHER, b"TLS_AES_256_GCM_SHA384"),
            (ProxySSLSubtype.SIG_ALG, b"RSA-SHA256"),
            (ProxySSLSubtype.KEY_ALG, b"RSA2048"),
        ],
    )
    header = ProxyHeader(
        version=2,
        source=("2001:db8::7", 51000),
        destination=("2001:db8::1", 443),
        tlvs=[
            (ProxyTLVType.ALPN, b"h2"),
            (ProxyTLVType.AUTHORITY, "exämple.org".encode()),
            (ProxyTLVType.UNIQUE_ID, b"\x00id"),
            (ProxyTLVType.SSL, ssl.to_bytes()),
            (ProxyTLVType.NETNS, b"blue"),
            (0xE0, b"custom"),
        ],
    )
    decoded = decode_whole(encode_proxy_header(header)).header
    assert (decoded.alpn, decoded.authority, decoded.unique_id, decoded.netns) == (
        b"h2",
        "exämple.org",
        b"\x00id",
        "blue",
    )
    assert decoded.tlv(0xE0) == b"custom"
    assert decoded.ssl == ssl
    assert decoded.ssl is not None
    assert (decoded.ssl.version, decoded.ssl.cn, decoded.ssl.cipher) == (
        "TLSv1.3",
        "cliënt",
        "TLS_AES_256_GCM_SHA384",
    )
    assert (decoded.ssl.sig_alg, decoded.ssl.key_alg) == ("RSA-SHA256", "RSA2048")
    assert ProxyHeader(version=1).ssl is None
    assert ProxyHeader(version=1).authority is None


def test_local_ignores_the_family_and_addresses_but_keeps_tlvs() -> None:
    body = bytes(12) + b"\x05\x00\x02id"  # an AF_INET address block, then a UNIQUE_ID TLV
    local = SIGNATURE + b"\x20\x11" + len(body).to_bytes(2, "big") + body
    assert decode_whole(local).header == ProxyHeader(
        version=2, command="LOCAL", tlvs=[(ProxyTLVType.UNIQUE_ID, b"id")]
    )
    # A block shorter than its family's addresses, or a family byte the spec does not
    # define, is ignored too: the block is skipped whole.
    short = SIGNATURE + b"\x20\x11\x00\x03abc"
    assert decode_whole(short) == ProxyHeaderDecoded(ProxyHeader(version=2, command="LOCAL"), 19)
    odd = SIGNATURE + b"\x20\x99\x00\x03abc"
    assert decode_whole(odd) == ProxyHeaderDecoded(ProxyHeader(version=2, command="LOCAL"), 19)


def test_unknown_ignores_the_rest_of_its_line() -> None:
    assert decode_whole(b"PROXY UNKNOWN ffff::1 \xff anything\r\n").header == ProxyHeader(version=1)


def test_unix_addresses() -> None:
    block = b"/run/a.sock".ljust(108, b"\0") + b"\0abstract".ljust(108, b"\0")
    data = SIGNATURE + b"\x21\x31" + len(block).to_bytes(2, "big") + block
    header = decode_whole(data).header
    assert (header.source, header.destination) == ("/run/a.sock", "\0abstract")
    assert header.family == socket.AF_UNIX
    unnamed = ProxyHeader(version=2, source="", destination="/x")
    assert decode_whole(encode_proxy_header(unnamed)).header == unnamed


def v2(command_byte: int, family_byte: int, body: bytes) -> bytes:
    return SIGNATURE + bytes((command_byte, family_byte)) + len(body).to_bytes(2, "big") + body


INET_BLOCK = bytes(12)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"GET / HTTP/1.1\r\n", r"expected a PROXY protocol header.*not b'GET / HTTP/1.1\\r\\n'"),
        (b"PROXY\r\n", "expected a PROXY protocol header"),
        (b"\r\n\r\nGET", "expected a PROXY protocol header"),
        (b"PROXY TCP5 1.2.3.4\r\n", "names TCP4, TCP6 or UNKNOWN, not b'TCP5'"),
        (b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2 3\r\n", "has 6 fields separated by single spaces.*not 7"),
        (b"PROXY TCP4 1.2.3.4  1.2.3.4 1 2\r\n", "not 7"),
        (b"PROXY TCP4 1.2.3.4 1.2.3.4 080 2\r\n", "source port must be a decimal number.*b'080'"),
        (
            b"PROXY TCP4 1.2.3.4 1.2.3.4 1 65536\r\n",
            "port must be an int from 0 to 65535, not 65536",
        ),
        (b"PROXY TCP4 1.2.3.04 1.2.3.4 1 2\r\n", "source host must be an IPv4 address.*'1.2.3.04'"),
        (
            b"PROXY TCP4 ::1 1.2.3.4 1 2\r\n",
            r"source host must be an IPv4 address \(family AF_INET\)",
        ),
        (b"PROXY TCP6 ::1 fe80::1%eth0 1 2\r\n", "destination host must be an IPv6 address"),
        (b"PROXY TCP6 ::1 \xc3\xa9 1 2\r\n", "destination address must be US-ASCII"),
        (b"PROXY TCP4 1.2.3.4\n", "byte 18 is a lone LF"),
        (b"PROXY TCP4 1.2.3.4\rx", r"its CR is followed by b'x'"),
        (SIGNATURE + b"\x11", "unknown PROXY protocol version 1 after the v2 signature"),
        (SIGNATURE + b"\x22", "unknown v2 PROXY command 0x2"),
        (SIGNATURE + b"\x21\x13", "unknown v2 family and protocol byte 0x13"),
        (
            v2(0x21, 0x11, bytes(11)),
            "AF_INET header has 12 bytes of addresses, but its length is 11",
        ),
        (v2(0x21, 0x11, INET_BLOCK + b"\x01\x00"), "a TLV at byte 28 is cut short: 2 bytes left"),
        (v2(0x21, 0x11, INET_BLOCK + b"\x01\x00\x05ab"), "says its value is 5 bytes, but only 2"),
        (
            v2(0x21, 0x11, INET_BLOCK + b"\x03\x00\x04abcd"),
            "CRC32C is 0x61626364, but its bytes sum",
        ),
        (v2(0x21, 0x11, INET_BLOCK + b"\x03\x00\x02ab"), "at most one CRC32C TLV, of 4 bytes"),
        (v2(0x21, 0x11, INET_BLOCK + b"\x20\x00\x02ab"), "an SSL TLV holds at least 5 bytes"),
        (v2(0x21, 0x11, INET_BLOCK + b"\x20\x00\x06\x01\0\0\0\0\x21"), "SSL sub-TLV at byte 0"),
        (v2(0x21, 0x11, INET_BLOCK + b"\x02\x00\x01\xff"), "TLV 0x02 must be utf-8 text"),
        (v2(0x21, 0x00, b"\x30\x00\x01\xff"), "TLV 0x30 must be ascii text"),
        (v2(0x21, 0x31, bytes(215)), "AF_UNIX header has 216 bytes of addresses"),
    ],
)
def test_malformed_headers_are_named(data: bytes, message: str) -> None:
    with pytest.raises(ProxyHeaderError, match=message) as raised:
        decode_proxy_header(data)
    assert isinstance(raised.value, ComposervError)
    assert isinstance(raised.value, ValueError)


def test_a_checksum_that_matches_is_accepted_and_a_changed_byte_is_not() -> None:
    header = ProxyHeader(
        version=2,
        source=("192.0.2.1", 1),
        destination=("192.0.2.2", 2),
        tlvs=[(ProxyTLVType.CRC32C, bytes(4))],
    )
    encoded = encode_proxy_header(header)
    assert decode_whole(encoded).header.tlv(ProxyTLVType.CRC32C) != bytes(4)
    damaged = encoded[:16] + b"\xc1" + encoded[17:]
    with pytest.raises(ProxyHeaderError, match="damaged or altered"):
        decode_proxy_header(damaged)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"version": 3}, "version must be 1 or 2, not 3"),
        ({"version": True}, "version must be 1 or 2, not True"),
        ({"version": 2, "command": "HEALTH"}, "command must be 'PROXY' or 'LOCAL', not 'HEALTH'"),
        ({"version": 1, "command": "LOCAL"}, "'LOCAL' exists in version 2 only"),
        (
            {
                "version": 2,
                "command": "LOCAL",
                "source": ("1.2.3.4", 1),
                "destination": ("1.2.3.4", 2),
            },
            "a LOCAL ProxyHeader carries no addresses",
        ),
        ({"version": 1, "source": "/a", "destination": "/b"}, "TCP over IPv4 or IPv6 only"),
        (
            {
                "version": 1,
                "source": ("::1", 1),
                "destination": ("::1", 2),
                "protocol": socket.SOCK_DGRAM,
            },
            "TCP over IPv4 or IPv6 only",
        ),
        ({"version": 1, "tlvs": [(1, b"h2")]}, "a version 1 ProxyHeader has no TLVs"),
        (
            {"version": 2, "source": ("1.2.3.4", 1)},
            "destination must be a .host, port. tuple for AF_INET",
        ),
        (
            {"version": 2, "source": ("1.2.3.4", 1), "destination": ("::1", 1)},
            "must be an IPv4 address",
        ),
        ({"version": 2, "source": ("h", 1), "destination": ("h", 1)}, "must be an IPv4 address"),
        (
            {"version": 2, "source": ("::1", -1), "destination": ("::1", 1)},
            "from 0 to 65535, not -1",
        ),
        ({"version": 2, "source": ("1.2.3.4", 1), "destination": ("1.2.3.4", "2")}, "not '2'"),
        ({"version": 2, "family": socket.AF_INET, "protocol": None}, "AF_INET.*with None"),
        ({"version": 2, "family": [2]}, r"not \[2\] with"),
        ({"version": 2, "family": 0}, "not 0 with None"),
        (
            {"version": 2, "family": socket.AF_UNSPEC, "protocol": socket.SOCK_STREAM},
            "AF_UNSPEC with None",
        ),
        (
            {"version": 2, "source": "/" * 109, "destination": "/b"},
            "source is 109 bytes, over the 108",
        ),
        ({"version": 2, "source": "\0abc\0", "destination": "/b"}, "abstract name ending in NUL"),
        ({"version": 2, "source": "\0", "destination": "/b"}, "abstract name ending in NUL"),
        ({"version": 2, "source": "/a\0b", "destination": "/b"}, "has a NUL inside the path"),
        ({"version": 2, "source": "/\ud800", "destination": "/b"}, "cannot be encoded"),
        (
            {"version": 2, "source": b"/a", "destination": "/b"},
            "source must be a .host, port. tuple",
        ),
        (
            {"version": 2, "source": ("1.2.3.4", 1), "destination": "/b"},
            "destination must be a .host",
        ),
        ({"version": 2, "tlvs": b"abc"}, "tlvs must be a sequence of"),
        ({"version": 2, "tlvs": [(1,)]}, r"each TLV must be a \(type, bytes\) pair, not \(1,\)"),
        ({"version": 2, "tlvs": [(256, b"")]}, "a TLV type must be an int from 0 to 255, not 256"),
        ({"version": 2, "tlvs": [(1, "h2")]}, "the value of TLV 0x01 must be bytes, not 'h2'"),
        ({"version": 2, "tlvs": [(1, bytes(65536))]}, "65536 bytes, over the 65535"),
        ({"version": 2, "tlvs": [(1, bytes(40000))] * 2}, "addresses and TLVs are 80006 bytes"),
        ({"version": 2, "tlvs": [(3, bytes(4))] * 2}, "at most one CRC32C TLV"),
        ({"version": 2, "tlvs": [(0x20, b"\x01")]}, "an SSL TLV holds at least 5 bytes"),
    ],
)
def test_invalid_headers_cannot_be_built(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ProxyHeaderError, match=message):
        ProxyHeader(**fields)


def test_invalid_ssl_values_cannot_be_built() -> None:
    with pytest.raises(ProxyHeaderError, match="client must be an int from 0 to 255, not 256"):
        ProxySSL(client=256, verify=0)
    with pytest.raises(ProxyHeaderError, match="verify must be an int from 0 to 4294967295"):
        ProxySSL(client=0, verify=-1)
    with pytest.raises(ProxyHeaderError, match="SSL sub-TLV 0x21 must be ascii text"):
        ProxySSL(client=1, verify=0, tlvs=[(ProxySSLSubtype.VERSION, "TLSé".encode())])


def test_addresses_are_written_the_way_ipaddress_writes_them() -> None:
    header = ProxyHeader(version=2, source=("2001:DB8:0::1", 1), destination=("::FFFF:1.2.3.4", 2))
    assert header.source == ("2001:db8::1", 1)
    assert decode_whole(encode_proxy_header(header)).header == header
    assert header.family == socket.AF_INET6


@pytest.mark.parametrize("max_size", [106, 65552, True, "4096"])
def test_bad_max_size_is_a_configuration_error(max_size: Any) -> None:
    with pytest.raises(ConfigurationError, match="max_size must be"):
        decode_proxy_header(b"PROXY ", max_size=max_size)


def test_an_empty_buffer_asks_for_the_shortest_header() -> None:
    assert decode_proxy_header(b"") == ProxyHeaderIncomplete(15)
    assert decode_proxy_header(bytearray(b"PROXY TCP4 ")) == ProxyHeaderIncomplete(21)
    assert decode_proxy_header(memoryview(SIGNATURE)) == ProxyHeaderIncomplete(4)
