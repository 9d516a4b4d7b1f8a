"""Headers from a real HAProxy decode to the client it relays, and its health checks to LOCAL."""

from __future__ import annotations

import queue
import re
import shutil
import socket
import ssl
import threading
from pathlib import Path

import pytest

from composerv._errors import ProxyHeaderError
from composerv._proxy import (
    ProxyHeader,
    ProxyHeaderIncomplete,
    ProxySSLClient,
    ProxyTLVType,
    decode_proxy_header,
)

from .haproxy import certificate_pem, running_haproxy
from .support import DEADLINE, connect, recv_exactly, required_program

# Every test also checks that HAProxy, the backend thread and their sockets are gone after.
pytestmark = pytest.mark.usefixtures("composerv_no_leaks")

CLIENT_HOST = "127.0.0.3"  # not 127.0.0.1, so the header cannot be confused with HAProxy's own


def read_proxy_header(conn: socket.socket) -> ProxyHeader:
    """Read the header as a server must: exactly its bytes, leaving the client's in the socket."""
    received = b""
    while isinstance(result := decode_proxy_header(received), ProxyHeaderIncomplete):
        chunk = conn.recv(result.at_least)
        if not chunk:
            raise ConnectionError(f"EOF after {len(received)} bytes of a PROXY header")
        received += chunk
    assert result.size == len(received), "read past the header"
    return result.header


class Backend:
    """A plain blocking TCP server behind HAProxy, one connection at a time.

    It decodes each connection's header into `headers`, then echoes one line.
    """

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address: tuple[str, int] = self.listener.getsockname()
        self.headers: queue.Queue[ProxyHeader | Exception] = queue.Queue()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="proxy-backend")

    def __enter__(self) -> Backend:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stopping.set()
        socket.create_connection(self.address, timeout=DEADLINE).close()  # wake accept()
        self._thread.join(DEADLINE)
        self.listener.close()
        assert not self._thread.is_alive(), "the backend did not stop"

    def next_header(self) -> ProxyHeader:
        found = self.headers.get(timeout=DEADLINE)
        if isinstance(found, Exception):
            raise AssertionError(f"the backend could not read a header: {found!r}") from found
        return found

    def _serve(self) -> None:
        while True:
            conn, _ = self.listener.accept()
            with conn:
                if self._stopping.is_set():
                    return
                conn.settimeout(DEADLINE)
                self._handle(conn)

    def _handle(self, conn: socket.socket) -> None:
        try:
            header = read_proxy_header(conn)
        except (OSError, ProxyHeaderError) as exc:
            self.headers.put(exc)
            return
        self.headers.put(header)
        line = b""
        try:
            while not line.endswith(b"\n") and (chunk := conn.recv(1)):
                line += chunk
            conn.sendall(line)
        except ConnectionResetError:
            pass  # a health check: HAProxy resets it once connected


@pytest.mark.parametrize("version", [1, 2])
def test_send_proxy_names_the_client(version: int) -> None:
    option = "send-proxy" if version == 1 else "send-proxy-v2"
    with Backend() as backend, running_haproxy(backend.address, option) as haproxy:
        with connect(haproxy.address, source=CLIENT_HOST) as client:
            client.sendall(b"hello\n")
            # The line comes back whole: reading the header took none of it.
            assert recv_exactly(client, 6) == b"hello\n"
            assert backend.next_header() == ProxyHeader(
                version=version,  # type: ignore[arg-type]
                source=client.getsockname(),
                destination=haproxy.address,
            )


def test_send_proxy_v2_checksum_and_unique_id() -> None:
    with (
        Backend() as backend,
        running_haproxy(
            backend.address,
            "send-proxy-v2 proxy-v2-options crc32c,unique-id",
            frontend=["unique-id-format %ci:%cp"],
        ) as haproxy,
    ):
        with connect(haproxy.address, source=CLIENT_HOST) as client:
            client.sendall(b"hello\n")
            assert recv_exactly(client, 6) == b"hello\n"
            header = backend.next_header()
            host, port = client.getsockname()
    # The decoder checked HAProxy's CRC32C; a mismatch would have raised.
    assert [kind for kind, _ in header.tlvs] == [ProxyTLVType.CRC32C, ProxyTLVType.UNIQUE_ID]
    assert header.unique_id == f"{host}:{port}".encode()


def test_send_proxy_v2_ssl_describes_the_tls_client(tmp_path: Path) -> None:
    pem = certificate_pem(tmp_path)
    context = ssl.create_default_context(cafile=str(pem))
    with (
        Backend() as backend,
        running_haproxy(
            backend.address,
            "send-proxy-v2-ssl-cn proxy-v2-options ssl-cipher,cert-sig,cert-key,authority",
            bind_options=f" ssl crt {pem}",
        ) as haproxy,
    ):
        with context.wrap_socket(
            connect(haproxy.address, source=CLIENT_HOST), server_hostname="localhost"
        ) as client:
            client.sendall(b"hello\n")
            assert recv_exactly(client, 6) == b"hello\n"
            negotiated = client.cipher()
            assert negotiated is not None
            cipher, version, _ = negotiated
            header = backend.next_header()
    assert header.authority == "localhost"
    assert header.ssl is not None
    assert header.ssl.client == ProxySSLClient.SSL  # connected over TLS, with no certificate
    assert (header.ssl.version, header.ssl.cipher) == (version, cipher)
    assert (header.ssl.sig_alg, header.ssl.key_alg) == ("ecdsa-with-SHA256", "EC256")
    assert header.ssl.cn is None


def test_v2_health_checks_are_local() -> None:
    options = "send-proxy-v2 check check-send-proxy inter 100ms proxy-v2-options crc32c"
    with Backend() as backend, running_haproxy(backend.address, options):
        header = backend.next_header()
    assert (header.command, header.source, header.destination) == ("LOCAL", None, None)
    assert [kind for kind, _ in header.tlvs] == [ProxyTLVType.CRC32C]


def test_v1_health_checks_name_haproxys_own_connection() -> None:
    # v1 has no LOCAL; as the spec recommends, HAProxy fills in its own addresses.
    with Backend() as backend, running_haproxy(backend.address, "send-proxy check inter 100ms"):
        header = backend.next_header()
    assert header.version == 1
    assert header.destination == backend.address
    assert isinstance(header.source, tuple)
    assert header.source[0] == "127.0.0.1"


@pytest.mark.parametrize(
    ("name", "packages"), [("haproxy", "haproxy"), ("nginx", "nginx libnginx-mod-stream")]
)
def test_a_missing_real_peer_skips_except_under_ci(
    name: str, packages: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda *_, **__: None)
    monkeypatch.delenv("CI", raising=False)
    advice = re.escape(f"needs {name} (apt-get install {packages})")
    with pytest.raises(pytest.skip.Exception, match=advice):
        required_program(name, packages)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run these tests"):
        required_program(name, packages)
