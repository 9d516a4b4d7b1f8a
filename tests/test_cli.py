"""The real command line, in a subprocess: serving, graceful SIGTERM, clear errors."""

from __future__ import annotations

import signal
import socket
import time

import pytest

from .cli import ROOT, inet, run_to_exit, running
from .support import DEADLINE, assert_refused_while, assert_took, connect, recv_exactly


def _echo_once(address: object) -> None:
    with connect(address) as client:
        client.sendall(b"ping\n")
        assert recv_exactly(client, 5) == b"ping\n"


@pytest.mark.parametrize(
    "app", ["tests.apps.echo:handler", "tests.apps.echo:make_handler"], ids=["handler", "factory"]
)
def test_serves_a_handler_and_stops_on_sigterm(app: str, composerv_no_leaks: None) -> None:
    with running("run", app, "--bind", "tcp://127.0.0.1:0") as cli:
        url = cli.listening()
        assert url.startswith("tcp://127.0.0.1:")
        _echo_once(inet(url))
        cli.proc.send_signal(signal.SIGTERM)
        assert cli.finish() == 0
        cli.wait_for("received SIGTERM")


@pytest.mark.parametrize("workers", [[], ["--workers", "2"]], ids=["one-process", "two-workers"])
def test_serves_a_message_handler_on_evented(workers: list[str], composerv_no_leaks: None) -> None:
    with running(
        "run",
        "tests.apps.echo:shout",
        "--bind",
        "tcp://127.0.0.1:0",
        "--concurrency",
        "evented",
        *workers,
    ) as cli:
        address = inet(cli.wait_for(r"listening on (\S+)").group(1))
        for _ in range(5):
            with connect(address) as client:
                client.sendall(b"ping\n")
                assert recv_exactly(client, 5) == b"PING\n"
        cli.proc.send_signal(signal.SIGTERM)
        assert cli.finish() == 0


@pytest.mark.parametrize("workers", [[], ["--workers", "2"]], ids=["one-process", "two-workers"])
def test_binds_behind_a_proxy(workers: list[str], composerv_no_leaks: None) -> None:
    url = "proxy+tcp://127.0.0.1:0?trusted=127.0.0.1"
    with running("run", "tests.apps.echo:peer", "--bind", url, *workers) as cli:
        found = cli.wait_for(r"listening on (\S+) \(PROXY protocol from 127\.0\.0\.1/32\b")
        with connect(inet(found.group(1))) as client:
            client.sendall(b"PROXY TCP4 192.0.2.9 10.0.0.1 4242 8000\r\nhi\n")
            assert recv_exactly(client, 18) == b"192.0.2.9 4242 hi\n"
        cli.proc.send_signal(signal.SIGTERM)
        assert cli.finish() == 0


def test_serves_a_server_from_a_factory(composerv_no_leaks: None) -> None:
    with running("run", "tests.apps.echo:make_server") as cli:
        _echo_once(inet(cli.listening()))
        cli.proc.send_signal(signal.SIGINT)
        assert cli.finish() == 0


def test_several_binds_ipv6_and_unix(unix_path: str, composerv_no_leaks: None) -> None:
    with running(
        "run", "tests.apps.echo:handler", "--bind", "tcp://[::1]:0", "--bind", f"unix://{unix_path}"
    ) as cli:
        first = cli.wait_for(r"listening on (tcp://\[::1\]:\d+)").group(1)
        cli.wait_for(f"listening on unix://{unix_path}")
        _echo_once(inet(first))
        _echo_once(unix_path)
        cli.proc.send_signal(signal.SIGTERM)
        assert cli.finish() == 0


def test_sigterm_mid_request_lets_the_request_finish(composerv_no_leaks: None) -> None:
    with running("run", "tests.apps.echo:slow", "--bind", "tcp://127.0.0.1:0") as cli:
        address = inet(cli.listening())
        with connect(address) as client:
            client.sendall(b"begin\n")
            assert recv_exactly(client, 8) == b"started\n"
            cli.proc.send_signal(signal.SIGTERM)
            cli.wait_for("no longer accepting")
            # While the request is still in flight, a new client is refused.
            assert_refused_while(address, lambda: cli.proc.poll() is None, "the drain")
            assert cli.proc.poll() is None, "exited with a request in flight"
            assert recv_exactly(client, 5) == b"done\n"
        assert cli.finish() == 0
        cli.wait_for("stopped")


def test_drain_deadline_exits_non_zero(composerv_no_leaks: None) -> None:
    with running(
        "run", "tests.apps.echo:slow", "--bind", "tcp://127.0.0.1:0", "--drain", "0.3"
    ) as cli:
        with connect(inet(cli.listening())) as client:
            client.sendall(b"begin\n")
            assert recv_exactly(client, 8) == b"started\n"
            cli.proc.send_signal(signal.SIGTERM)
            assert cli.finish() == 1
        cli.wait_for("requests still running after 0.3s")


def _one_line_error(args: list[str], *expected: str) -> None:
    result = run_to_exit(*args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("composerv: error: "), lines[0]
    for part in expected:
        assert part in lines[0], lines[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--bind", "tcp://127.0.0.1:99999"], ["'tcp://127.0.0.1:99999'", "port 99999"]),
        (["--bind", "tcp//127.0.0.1:80"], ["no scheme"]),
        (["--bind", "sctp://127.0.0.1:80"], ["unknown scheme 'sctp'"]),
        (["--bind", "udp://127.0.0.1:0"], ["stream handler cannot serve the datagram"]),
        (["--workers", "0"], ["--workers", "'0'"]),
        (["--concurrency", "fibers"], ["--concurrency", "'fibers'"]),
        (["--concurrency", "evented"], ["evented() serves only message handlers"]),
        (["--drain", "soon"], ["--drain", "'soon'"]),
        (["--ssl-keyfile", "k.pem"], ["--ssl-keyfile needs --ssl-certfile"]),
        (["--ssl-certfile", "/nonexistent.pem"], ["cannot load the TLS certificate"]),
    ],
)
def test_bad_arguments(args: list[str], expected: list[str], composerv_no_leaks: None) -> None:
    _one_line_error(["run", "tests.apps.echo:handler", *args], *expected)


@pytest.mark.parametrize(
    ("app", "expected"),
    [
        ("tests.apps.nowhere:handler", ["cannot import module 'tests.apps.nowhere'"]),
        ("nowhere.at.all:handler", ["cannot import module 'nowhere.at.all'"]),
        ("tests.apps.echo:nothing", ["module 'tests.apps.echo' has no attribute 'nothing'"]),
        ("tests.apps.echo:handler.fn.nope", ["no attribute 'handler.fn.nope'", "'nope'"]),
        ("tests.apps.echo", ["must look like package.module:attr", "'tests.apps.echo'"]),
        ("tests.apps.echo:not_a_handler", ["tests.apps.echo:not_a_handler is int 42"]),
        ("tests.apps.echo:_echo", ["a function of no arguments"]),
    ],
)
def test_bad_module_paths(app: str, expected: list[str], composerv_no_leaks: None) -> None:
    _one_line_error(["run", app], *expected)


def test_options_that_cannot_apply_to_a_server(composerv_no_leaks: None) -> None:
    _one_line_error(
        ["run", "tests.apps.echo:make_server", "--workers", "2"], "is a Server", "--workers"
    )


def test_address_in_use(composerv_no_leaks: None) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        _one_line_error(
            ["run", "tests.apps.echo:handler", "--bind", f"tcp://127.0.0.1:{port}"],
            "cannot listen on",
            "Address already in use",
        )


def test_missing_command(composerv_no_leaks: None) -> None:
    _one_line_error([], "required")


def test_sigterm_under_sync_is_bounded_by_the_drain_deadline(composerv_no_leaks: None) -> None:
    # Under sync() the request runs in the accept loop, so even stopping the loop waits for it.
    args = ["--bind", "tcp://127.0.0.1:0", "--concurrency", "sync", "--drain", "0.3"]
    with running("run", "tests.apps.echo:slow", *args) as cli:
        client = connect(inet(cli.listening()))
        with client:
            client.sendall(b"begin\n")
            assert recv_exactly(client, 8) == b"started\n"
            started = time.monotonic()
            cli.proc.send_signal(signal.SIGTERM)
            assert cli.finish() == 1
            assert_took(started, 0.3, "stopping with a request that outlives --drain")


def test_datagram_handler_over_udp(composerv_no_leaks: None) -> None:
    with running("run", "tests.apps.echo:datagram", "--bind", "udp://127.0.0.1:0") as cli:
        address = inet(cli.listening())
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.settimeout(DEADLINE)
            client.sendto(b"ping", address)
            assert client.recv(16) == b"PING"
        cli.proc.send_signal(signal.SIGTERM)
        assert cli.finish() == 0


def test_console_script_points_at_main(composerv_no_leaks: None) -> None:
    tomllib = pytest.importorskip("tomllib")
    from composerv import _cli

    with open(f"{ROOT}/pyproject.toml", "rb") as f:
        scripts = tomllib.load(f)["project"]["scripts"]
    module, _, name = scripts["composerv"].partition(":")
    assert (module, name) == ("composerv._cli", "main")
    with pytest.raises(SystemExit) as exit_info:
        _cli.main(["run", "tests.apps.echo:handler", "--workers", "0"])
    assert exit_info.value.code == 2
