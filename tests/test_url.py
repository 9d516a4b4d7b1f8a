"""transport_from_url: every kind of address, and errors that name the bad part."""

from __future__ import annotations

import socket

import pytest

from composerv import ConfigurationError, serve, stream_handler, sync, transport_from_url
from composerv._url import url_of
from composerv.types import TCP, UDP, InheritedStream, ProxyProtocol, UnixDatagram, UnixStream


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("tcp://127.0.0.1:8000", TCP(("127.0.0.1", 8000))),
        ("TCP://127.0.0.1:0", TCP(("127.0.0.1", 0))),
        ("tcp://[::1]:8000", TCP(("::1", 8000))),
        ("tcp://localhost:80", TCP(("localhost", 80))),
        ("udp://0.0.0.0:5353", UDP(("0.0.0.0", 5353))),
        ("udp://[::]:53", UDP(("::", 53))),
        ("unix:///run/app.sock", UnixStream("/run/app.sock")),
        ("unix:///tmp/with%20space.sock", UnixStream("/tmp/with space.sock")),
        ("unix-dgram:///tmp/x.sock", UnixDatagram("/tmp/x.sock")),
        (
            "proxy+tcp://127.0.0.1:8000?trusted=10.0.0.0/8,127.0.0.1",
            ProxyProtocol(TCP(("127.0.0.1", 8000)), trusted=["10.0.0.0/8", "127.0.0.1/32"]),
        ),
        (
            "PROXY+TCP://[::1]:8000?trusted=::1",
            ProxyProtocol(TCP(("::1", 8000)), trusted=["::1/128"]),
        ),
        ("proxy+unix:///run/app.sock", ProxyProtocol(UnixStream("/run/app.sock"), trusted=())),
    ],
)
def test_valid_urls(url: str, expected: object) -> None:
    assert transport_from_url(url) == expected


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("127.0.0.1:8000", "no scheme"),
        ("http://127.0.0.1:8000", "unknown scheme 'http'"),
        ("tcp://127.0.0.1", "no port"),
        ("tcp://127.0.0.1:", "port '' that is not a number"),
        ("tcp://127.0.0.1:http", "port 'http' that is not a number"),
        ("tcp://127.0.0.1:-1", "port '-1' that is not a number"),
        ("tcp://127.0.0.1:65536", "port 65536 above 65535"),
        ("tcp://:8000", "no host"),
        ("tcp://::1:8000", "IPv6 host without brackets"),
        ("tcp://[::1:8000", "without its closing ']'"),
        ("tcp://[::1]", "no port after the host [::1]"),
        ("tcp://[::1]8000", "no port after the host [::1]"),
        ("tcp://127.0.0.1:8000/path", "path '/path'"),
        ("tcp://user@127.0.0.1:8000", "user info"),
        ("tcp://127.0.0.1:8000?backlog=5", "query or fragment"),
        ("tcp://999.1.1.1:80", "'999.1.1.1' is not a valid IPv4 or IPv6 address"),
        ("tcp://bad_host:80", "'bad_host' is not a valid host name"),
        ("unix://run/app.sock", "host 'run'"),
        ("unix://", "no path"),
        ("unix:///", "no path"),
        ("unix-dgram:///" + "x" * 200, "over the 107-byte limit"),
        ("fd://three", "descriptor 'three' that is not a number"),
        ("proxy+udp://127.0.0.1:53?trusted=10.0.0.0/8", "puts proxy+ before 'udp'"),
        ("proxy+tcp://127.0.0.1:8000", "no trusted=CIDR[,CIDR] query"),
        ("proxy+tcp://127.0.0.1:8000?trusted=", "no trusted=CIDR[,CIDR] query"),
        ("proxy+tcp://127.0.0.1:8000?trusted=10.0.0.0/33", "network '10.0.0.0/33'"),
        ("proxy+tcp://127.0.0.1:8000?timeout=5", "query naming timeout"),
        ("proxy+tcp://127.0.0.1:8000?trusted=::1&trusted=::2", "trusted more than once"),
        ("proxy+tcp://127.0.0.1:8000?trusted", "not name=value pairs"),
        ("proxy+tcp://127.0.0.1:8000?trusted=::1#here", "fragment"),
    ],
)
def test_invalid_urls_name_the_bad_part(url: str, named: str) -> None:
    with pytest.raises(ConfigurationError, match=r"^url|address host|path is") as info:
        transport_from_url(url)
    assert named in str(info.value)


def test_not_a_string() -> None:
    with pytest.raises(ConfigurationError, match="url must be a str"):
        transport_from_url(8000)  # type: ignore[arg-type]


def test_fd_url_adopts_a_passed_socket(composerv_no_leaks: None) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        transport = transport_from_url(f"fd://{listener.fileno()}")
        assert transport == InheritedStream(listener.fileno())


def test_fd_url_that_is_not_open() -> None:
    with socket.socket() as sock:
        fd = sock.fileno()
    with pytest.raises(ConfigurationError, match=f"fd {fd} is not an open descriptor"):
        transport_from_url(f"fd://{fd}")


@pytest.mark.parametrize("url", ["tcp://127.0.0.1:0", "tcp://[::1]:0", "unix:///PATH"])
def test_url_of_reads_back(url: str, unix_path: str, composerv_no_leaks: None) -> None:
    url = url.replace("/PATH", unix_path)
    with serve(transport_from_url(url), sync(), stream_handler(lambda c: None)) as server:
        bound = url_of(server.socket)
        assert transport_from_url(bound) == transport_from_url(
            url.replace(":0", f":{server.address[1]}") if url.startswith("tcp") else url
        )
