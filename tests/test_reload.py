"""Running past one machine, through the real command line: rolling reloads under load
through HAProxy, --max-requests, --shutdown-delay, and sd_notify."""

from __future__ import annotations

import collections
import os
import signal
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from composerv import (
    ConfigurationError,
    Connection,
    HandlerMismatchError,
    datagram_handler,
    serve,
    stream_handler,
    tcp,
    threaded,
    workers,
)
from composerv.types import StreamHandler

from .cli import Cli, inet, running
from .haproxy import running_haproxy
from .support import DEADLINE, ask_version, connect, serving, wait_until

pytestmark = pytest.mark.usefixtures("composerv_no_leaks")

CLIENT_HOST = "127.0.0.3"
APP = "tests.apps.versioned:handler"


@contextmanager
def _versioned(tmp_path: Path, *args: str, version: str = "v1") -> Iterator[tuple[Cli, Path]]:
    """``composerv run`` of the versioned app, whose version is in the file returned."""
    version_file = tmp_path / "version"
    version_file.write_text(version)
    env = {**os.environ, "COMPOSERV_TEST_VERSION_FILE": str(version_file)}
    with running("run", APP, *args, env=env) as cli:
        yield cli, version_file


class Load:
    """A client that asks through `address` in a loop, from CLIENT_HOST, one connection
    per request, until stopped: at most `limit` requests and DEADLINE * 3 seconds."""

    def __init__(self, address: tuple[str, int], limit: int = 100_000) -> None:
        self.address = address
        self.limit = limit
        self.replies: list[list[str]] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load")

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(DEADLINE)
        assert not self._thread.is_alive(), "the load did not stop"

    def _run(self) -> None:
        deadline = time.monotonic() + 3 * DEADLINE
        for _ in range(self.limit):
            if self._stop.is_set() or time.monotonic() > deadline:
                return
            try:
                self.replies.append(self._ask())
            except OSError as exc:
                self.failures.append(repr(exc))

    def _ask(self) -> list[str]:
        words = ask_version(self.address, source=CLIENT_HOST)
        assert words[2] == CLIENT_HOST, words  # the handler saw the client, not HAProxy
        return words

    def versions(self) -> list[str]:
        return [words[0] for words in self.replies]


def _scrape(address: tuple[str, int]) -> dict[str, float]:
    with urllib.request.urlopen(
        f"http://{address[0]}:{address[1]}/metrics", timeout=DEADLINE
    ) as reply:
        text = reply.read().decode()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def test_rolling_reload_behind_haproxy_fails_no_request(tmp_path: Path) -> None:
    with _versioned(
        tmp_path,
        "--bind",
        "proxy+tcp://127.0.0.1:0?trusted=127.0.0.1",
        "--workers",
        "2",
        "--metrics",
        "127.0.0.1:0",
    ) as (cli, version_file):
        address = inet(cli.listening())
        metrics = _host_port(cli.wait_for(r"serving metrics on http://(\S+)/metrics").group(1))
        # Both workers run before haproxy starts: a fork during Popen would keep its
        # error pipe open (see tests/test_proxy_protocol.py's _serving).
        first = cli.wait_for(r"started worker (\d+)").group(1)
        cli.wait_for(rf"started worker (?!{first}\b)\d+")
        with running_haproxy(address, "send-proxy-v2") as haproxy, Load(haproxy.address) as load:
            wait_until(lambda: len(load.replies) >= 50, "replies from the first version")
            version_file.write_text("v2")
            cli.proc.send_signal(signal.SIGHUP)
            took = float(cli.wait_for(r"reloaded \S+ in ([0-9.]+)s").group(1))
            count = len(load.replies)
            wait_until(lambda: len(load.replies) >= count + 200, "replies after the reload")
        # Every worker sends its counts at least every second, the replaced ones as they exit.
        wait_until(
            lambda: _scrape(metrics)["composerv_requests_total"] == len(load.replies),
            "the metrics to count every request",
        )
        found = _scrape(metrics)
        cli.proc.send_signal(signal.SIGTERM)
        assert cli.finish() == 0
    versions = load.versions()
    assert load.failures == [], load.failures[:5]
    assert versions[0] == "v1"
    assert versions[-50:] == ["v2"] * 50
    assert set(versions) == {"v1", "v2"}
    assert took < DEADLINE
    # Four workers served in all: two per version, each a process of its own.
    assert len({words[1] for words in load.replies}) == 4
    # The parent's metrics sum its workers', the replaced ones' included.
    assert found["composerv_connections_total"] == len(load.replies)
    assert found["composerv_errors_total"] == 0
    print(
        f"\nreload: {len(load.replies)} requests through haproxy, {len(load.failures)} failed, "
        f"reload took {took:.3f}s, metrics: requests_total={found['composerv_requests_total']:g} "
        f"connections_total={found['composerv_connections_total']:g}"
    )


def test_a_broken_version_is_logged_and_the_old_one_serves_on(tmp_path: Path) -> None:
    with _versioned(tmp_path, "--bind", "tcp://127.0.0.1:0", "--workers", "1") as (
        cli,
        version_file,
    ):
        address = inet(cli.listening())
        cli.wait_for("started worker")
        version_file.write_text("broken")
        cli.proc.send_signal(signal.SIGHUP)
        cli.wait_for(r"could not reload tests\.apps\.versioned:handler")
        cli.wait_for("this version of the app does not import")
        assert ask_version(address)[0] == "v1"
        cli.proc.send_signal(signal.SIGTERM)
        assert cli.finish() == 0


def test_without_workers_a_reload_is_refused_and_serving_goes_on(tmp_path: Path) -> None:
    with _versioned(tmp_path, "--bind", "tcp://127.0.0.1:0") as (cli, version_file):
        address = inet(cli.listening())
        version_file.write_text("v2")
        cli.proc.send_signal(signal.SIGHUP)
        cli.wait_for(r"reloading starts new worker processes, so serve with workers")
        assert ask_version(address)[0] == "v1"
        cli.proc.send_signal(signal.SIGTERM)
        assert cli.finish() == 0


def test_max_requests_recycles_a_worker_without_a_failed_request(tmp_path: Path) -> None:
    with _versioned(
        tmp_path,
        "--bind",
        "tcp://127.0.0.1:0",
        "--workers",
        "1",
        "--max-requests",
        "5",
        "--max-requests-jitter",
        "2",
    ) as (cli, _):
        address = inet(cli.listening())
        # Each asks once the last answered: 60, and on until a replacement has answered
        # (its start takes longer than 60 answers on a loaded machine), within bounds.
        pids: list[str] = []
        started = time.monotonic()
        while len(pids) < 60 or (len(set(pids)) < 2 and time.monotonic() - started < DEADLINE):
            pids.append(ask_version(address)[1])
        cli.proc.send_signal(signal.SIGTERM)
        assert cli.finish() == 0
    # A worker asks for its replacement at its 5th to 7th request and serves on until
    # the replacement accepts, and for the moment the order to drain takes to reach it
    # both accept: their answers may interleave, but none but the last worker serves
    # fewer than 5.
    served = collections.Counter(pids)
    assert len(served) >= 2, served
    assert all(served[pid] >= 5 for pid in list(served)[:-1]), pids


def test_shutdown_delay_keeps_serving_then_drains(tmp_path: Path) -> None:
    with _versioned(tmp_path, "--bind", "tcp://127.0.0.1:0", "--shutdown-delay", "1") as (
        cli,
        _,
    ):
        address = inet(cli.listening())
        started = time.monotonic()
        cli.proc.send_signal(signal.SIGTERM)
        cli.wait_for(r"serving for 1s more before draining")
        assert ask_version(address)[0] == "v1"  # still served, during the delay
        assert cli.finish() == 0
        assert time.monotonic() - started >= 1.0


def test_sd_notify_ready_reloading_stopping(tmp_path: Path, unix_path: str) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(unix_path)
        notify.settimeout(DEADLINE)
        version_file = tmp_path / "version"
        version_file.write_text("v1")
        env = {
            **os.environ,
            "COMPOSERV_TEST_VERSION_FILE": str(version_file),
            "NOTIFY_SOCKET": unix_path,
        }
        with running("run", APP, "--bind", "tcp://127.0.0.1:0", "--workers", "1", env=env) as cli:
            cli.listening()
            assert notify.recv(4096) == b"READY=1"
            cli.wait_for("started worker")
            cli.proc.send_signal(signal.SIGHUP)
            assert notify.recv(4096).startswith(b"RELOADING=1\nMONOTONIC_USEC=")
            assert notify.recv(4096) == b"READY=1"
            cli.proc.send_signal(signal.SIGTERM)
            assert notify.recv(4096) == b"STOPPING=1"
            assert cli.finish() == 0


# --- Server.reload and workers(max_requests=...), in the test's process ------------------


def _tagged(tag: bytes) -> StreamHandler:
    def answer(conn: Connection) -> None:
        if conn.readline():
            conn.send_all(tag + b" %d\n" % os.getpid())

    return stream_handler(answer)


def test_server_reload_replaces_the_workers_under_load() -> None:
    server = serve(tcp(("127.0.0.1", 0)), workers(2, threaded()), _tagged(b"one"))
    with serving(server):
        wait_until(lambda: server.active_requests == 2, "two workers")
        tags: list[bytes] = []
        failures: list[OSError] = []  # a reply cut short is a ConnectionError
        stop = threading.Event()

        def load() -> None:
            for _ in range(100_000):  # and until stopped, at most DEADLINE seconds
                if stop.is_set():
                    return
                try:
                    tags.append(_ask_tag(server.address))
                except OSError as exc:
                    failures.append(exc)

        thread = threading.Thread(target=load)
        thread.start()
        try:
            wait_until(lambda: len(tags) >= 20, "answers before the reload")
            server.reload(_tagged(b"two"))
            assert isinstance(server.handler, StreamHandler)
            count = len(tags)
            wait_until(lambda: len(tags) >= count + 20, "answers after the reload")
        finally:
            stop.set()
            thread.join(DEADLINE)
    assert failures == []
    assert tags[0] == b"one"
    assert tags[-10:] == [b"two"] * 10


def test_reload_checks_the_handler_before_touching_a_worker() -> None:
    server = serve(tcp(("127.0.0.1", 0)), workers(1, threaded()), _tagged(b"one"))
    with serving(server):
        before = server.handler
        with pytest.raises(HandlerMismatchError):
            server.reload(datagram_handler(print))  # type: ignore[arg-type]
        assert server.handler is before
        assert _ask_tag(server.address) == b"one"


def test_reload_needs_workers() -> None:
    server = serve(tcp(("127.0.0.1", 0)), threaded(), _tagged(b"one"))
    with serving(server):
        with pytest.raises(ConfigurationError, match=r"serve with workers\(n, \.\.\.\)"):
            server.reload(_tagged(b"two"))
        assert _ask_tag(server.address) == b"one"


def _ask_tag(address: tuple[str, int]) -> bytes:
    with connect(address) as client:
        client.sendall(b"?\n")
        reply = client.recv(100)
    if not reply.endswith(b"\n"):
        raise ConnectionError(f"the reply was cut short: {reply!r}")
    return reply.split()[0]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_requests": 0}, "max_requests must be a positive int"),
        ({"max_requests": 10, "max_requests_jitter": -1}, "max_requests_jitter must be a non-neg"),
        ({"max_requests_jitter": 5}, "max_requests_jitter=5 needs max_requests"),
    ],
)
def test_max_requests_options_are_checked(options: dict[str, int], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        workers(2, threaded(), **options)  # type: ignore[arg-type]
