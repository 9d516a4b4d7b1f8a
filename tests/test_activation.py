"""Socket activation: inherited(fd), systemd_sockets(), and the CLI under LISTEN_FDS."""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator

import pytest

from composerv import (
    ConfigurationError,
    datagram_handler,
    inherited,
    serve,
    stream_handler,
    sync,
    systemd_sockets,
)
from composerv.types import InheritedDatagram, InheritedStream

from .cli import running
from .support import DEADLINE, connect, recv_exactly, serving


def _listener() -> socket.socket:
    """A listening loopback socket, as a supervisor would make it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def test_inherited_stream_serves_a_passed_socket(composerv_no_leaks: None) -> None:
    with _listener() as made_by_supervisor:
        address = made_by_supervisor.getsockname()
        transport = inherited(os.dup(made_by_supervisor.fileno()))
        assert isinstance(transport, InheritedStream)
        server = serve(transport, sync(), stream_handler(lambda c: c.send_all(b"hi\n")))
        with serving(server), connect(address) as client:
            assert recv_exactly(client, 3) == b"hi\n"


def test_inherited_datagram_and_unix_path_is_left_alone(
    unix_path: str, composerv_no_leaks: None
) -> None:
    made = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    made.bind(unix_path)
    transport = inherited(made.detach(), "datagram")
    assert isinstance(transport, InheritedDatagram)
    server = serve(transport, sync(), datagram_handler(lambda d: d.reply(d.data.upper())))
    with serving(server), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as client:
        client.bind(unix_path + ".c")
        client.settimeout(DEADLINE)
        client.sendto(b"ping", unix_path)
        assert client.recv(16) == b"PING"
        os.unlink(unix_path + ".c")
    # The supervisor bound the path, so the supervisor removes it.
    assert os.path.exists(unix_path)


def test_inherited_listens_if_the_supervisor_did_not(composerv_no_leaks: None) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    address = sock.getsockname()
    server = serve(inherited(sock.detach()), sync(), stream_handler(lambda c: c.send_all(b"ok")))
    with serving(server), connect(address) as client:
        assert recv_exactly(client, 2) == b"ok"


def test_inherited_errors() -> None:
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp_socket,
        pytest.raises(ConfigurationError, match="is a datagram socket"),
    ):
        inherited(udp_socket.fileno(), "stream")
    with (
        open(os.devnull) as not_a_socket,
        pytest.raises(ConfigurationError, match="is open but is not a socket"),
    ):
        inherited(not_a_socket.fileno())
    with pytest.raises(ConfigurationError, match="fd must be a non-negative int, not -1"):
        inherited(-1)
    with pytest.raises(ConfigurationError, match="kind must be"):
        inherited(0, "raw")  # type: ignore[call-overload]


@pytest.fixture
def listen_env() -> Iterator[None]:
    saved = {k: os.environ.pop(k) for k in ("LISTEN_PID", "LISTEN_FDS") if k in os.environ}
    yield
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(name, None)
    os.environ.update(saved)


def test_systemd_sockets_reads_and_clears_the_environment(listen_env: None) -> None:
    assert systemd_sockets() == []
    os.environ.update(LISTEN_PID=str(os.getpid() + 1), LISTEN_FDS="1")
    assert systemd_sockets() == [], "sockets meant for another process"
    with _listener() as first, _listener() as second:
        # Put the two sockets on descriptors 3 and 4 as systemd does, saving what was there.
        saved = {fd: _dup_if_open(fd) for fd in (3, 4)}
        try:
            os.dup2(first.fileno(), 3)
            os.dup2(second.fileno(), 4)
            os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS="2")
            assert systemd_sockets() == [InheritedStream(3), InheritedStream(4)]
            assert "LISTEN_FDS" not in os.environ
            assert "LISTEN_PID" not in os.environ
        finally:
            for fd, copy in saved.items():
                if copy is None:
                    os.close(fd)
                else:
                    os.dup2(copy, fd)
                    os.close(copy)


def _dup_if_open(fd: int) -> int | None:
    try:
        return os.dup(fd)
    except OSError:
        return None


def test_cli_under_socket_activation() -> None:
    with _listener() as made_by_supervisor:
        address = made_by_supervisor.getsockname()
        fd = made_by_supervisor.fileno()
        # As systemd does: the socket on descriptor 3, LISTEN_PID naming the service's
        # own pid (exec keeps the shell's pid, $$), and no --bind.
        with running(
            "run",
            "tests.apps.echo:handler",
            wrapper=f'LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" "$@" 3<&{fd}',
            pass_fds=(fd,),
        ) as cli:
            url = cli.listening()
            assert url == f"tcp://127.0.0.1:{address[1]}"
            with connect(address) as client:
                client.sendall(b"activated\n")
                assert recv_exactly(client, 10) == b"activated\n"
            cli.proc.send_signal(signal.SIGTERM)
            assert cli.finish() == 0
