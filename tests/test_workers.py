"""workers(n, concurrency): a crashed worker is replaced; shutdown leaves no process behind."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
from typing import Any

import pytest

from composerv import (
    ConfigurationError,
    Connection,
    HandlerMismatchError,
    evented,
    message_handler,
    pooled,
    serve,
    stream_handler,
    sync,
    tcp,
    threaded,
    workers,
)
from composerv.types import Workers

from .cli import inet, running
from .support import DEADLINE, assert_refused_while, connect, recv_exactly, serving, wait_until


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        # A thread may end between listing and reading: it has no children then.
        with contextlib.suppress(FileNotFoundError), open(f"/proc/{pid}/task/{task}/children") as f:
            found.update(int(child) for child in f.read().split())
    return found


def _gone(pid: int) -> bool:
    """No such process, or a zombie whose parent has not collected it yet."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _pid_reply(client: socket.socket) -> int:
    """The pid a worker answers with; the file is closed even if the reply is bad."""
    with client.makefile("rb") as reader:
        return int(reader.readline())


def _served_by(address: tuple[str, int]) -> int:
    with connect(address) as client:
        client.sendall(b"who\n")
        return _pid_reply(client)


def test_a_killed_worker_is_replaced_and_service_goes_on() -> None:
    with running(
        "run", "tests.apps.echo:pid", "--bind", "tcp://127.0.0.1:0", "--workers", "2"
    ) as cli:
        address = inet(cli.wait_for(r"listening on (\S+) \(2 workers\)").group(1))
        wait_until(lambda: len(_children(cli.proc.pid)) == 2, "two workers")
        first = _children(cli.proc.pid)
        assert _served_by(address) in first
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        cli.wait_for(f"worker {victim} was killed by SIGKILL")
        wait_until(
            lambda: len(_children(cli.proc.pid) - first) == 1 and _gone(victim),
            "a replacement worker",
        )
        live = _children(cli.proc.pid)
        assert victim not in live
        assert len(live) == 2
        for _ in range(20):
            assert _served_by(address) in live
        cli.proc.send_signal(signal.SIGTERM)
        assert cli.finish() == 0
    for pid in first | live:
        assert _gone(pid), f"worker {pid} outlived the server"


def test_sigterm_mid_request_in_a_worker() -> None:
    with running(
        "run", "tests.apps.echo:slow", "--bind", "tcp://127.0.0.1:0", "--workers", "2"
    ) as cli:
        address = inet(cli.listening())
        with connect(address) as client:
            client.sendall(b"begin\n")
            assert recv_exactly(client, 8) == b"started\n"
            workers_before = _children(cli.proc.pid)
            cli.proc.send_signal(signal.SIGTERM)
            cli.wait_for("stopping 2 workers")
            # Refused only once every worker has closed its listening socket: the
            # request finishes during the workers' drain, not before it began.
            assert_refused_while(address, lambda: cli.proc.poll() is None, "the drain")
            client.sendall(b"finish\n")
            assert recv_exactly(client, 5) == b"done\n"
        assert cli.finish() == 0
    for pid in workers_before:
        assert _gone(pid)


def test_a_crashing_worker_is_logged_and_replaced() -> None:
    with running(
        "run",
        "tests.apps.echo:crash",
        "--bind",
        "tcp://127.0.0.1:0",
        "--workers",
        "1",
        "--concurrency",
        "sync",
    ) as cli:
        address = inet(cli.listening())
        with connect(address) as client:
            client.sendall(b"crash\n")
            assert client.recv(16) == b""
        cli.wait_for(r"worker \d+ exited with status 3 after [\d.]+s; starting another")
        cli.wait_for(r"started worker \d+", timeout=DEADLINE)
        wait_until(lambda: _answers(address), "the replacement to answer")
        cli.proc.send_signal(signal.SIGTERM)
        assert cli.finish() == 0


def _answers(address: tuple[str, int]) -> bool:
    with connect(address) as client:
        client.sendall(b"hello\n")
        return client.recv(16) == b"hello\n"


def test_workers_die_with_their_parent() -> None:
    with running(
        "run", "tests.apps.echo:pid", "--bind", "tcp://127.0.0.1:0", "--workers", "2"
    ) as cli:
        cli.listening()
        wait_until(lambda: len(_children(cli.proc.pid)) == 2, "two workers")
        orphans = _children(cli.proc.pid)
        cli.proc.send_signal(signal.SIGKILL)
        cli.proc.wait(DEADLINE)
        wait_until(lambda: all(_gone(pid) for pid in orphans), "orphaned workers to exit")


def _pid_handler(conn: Connection) -> None:
    if conn.readline():
        conn.send_all(b"%d\n" % os.getpid())


@pytest.mark.parametrize(
    "inner", [sync(), threaded(), pooled()], ids=["sync", "threaded", "pooled"]
)
def test_in_process_serve_forever_and_shutdown(inner: Any, no_leaks: None) -> None:
    server = serve(tcp(("127.0.0.1", 0)), workers(2, inner), stream_handler(_pid_handler))
    with serving(server):
        wait_until(lambda: server.active_requests == 2, "two workers")
        pids = {_served_by(server.address) for _ in range(10)}
        assert os.getpid() not in pids
        assert pids <= _children(os.getpid())
    assert all(_gone(pid) for pid in pids)


def _pid_message(message: bytes) -> bytes:
    return b"%d" % os.getpid()


def test_each_worker_runs_its_own_event_loop_and_drains_it(no_leaks: None) -> None:
    server = serve(tcp(("127.0.0.1", 0)), workers(2, evented()), message_handler(_pid_message))
    with connect(server.address) as idle:
        with serving(server):
            wait_until(lambda: server.active_requests == 2, "two workers")
            clients = [connect(server.address) for _ in range(8)]
            try:
                for client in clients:
                    client.sendall(b"who\n")
                pids = {_pid_reply(client) for client in clients}
            finally:
                for client in clients:
                    client.close()
            assert os.getpid() not in pids
            assert pids <= _children(os.getpid())
            # A worker takes every connection waiting when it wakes, so the eight may
            # all have gone to one worker, and the idle one to the other.
            idle.sendall(b"who\n")
            pids.add(_pid_reply(idle))
            assert pids <= _children(os.getpid())
            stopping = time.monotonic()
        # The worker closed the idle connection at once instead of waiting for the
        # stop_timeout's SIGKILL.
        assert time.monotonic() - stopping < 5.0
        assert idle.recv(1) == b""
    assert all(_gone(pid) for pid in pids)


def test_a_blocking_handler_on_event_loop_workers_is_refused() -> None:
    with pytest.raises(HandlerMismatchError, match=r"use message_handler\(fn\)"):
        serve(tcp(("127.0.0.1", 0)), workers(2, evented()), stream_handler(_pid_handler))  # type: ignore[arg-type]


def test_validation() -> None:
    with pytest.raises(ConfigurationError, match="count must be a positive int, not 0"):
        workers(0, threaded())
    with pytest.raises(ConfigurationError, match="cannot run inside workers"):
        workers(2, workers(2, threaded()))
    with pytest.raises(TypeError, match="must be a concurrency value such as"):
        workers(2, "threaded")  # type: ignore[call-overload]
    assert workers().count == (os.cpu_count() or 1)
    assert isinstance(workers(), Workers)


def test_shutdown_from_a_signal_handler_on_the_supervising_thread(no_leaks: None) -> None:
    server = serve(tcp(("127.0.0.1", 0)), workers(1, sync()), stream_handler(_pid_handler))

    def signal_once_serving() -> None:
        wait_until(lambda: server.active_requests == 1, "the worker to start")
        os.kill(os.getpid(), signal.SIGUSR1)

    previous = signal.signal(signal.SIGUSR1, lambda _signum, _frame: server.shutdown())
    sender = threading.Thread(target=signal_once_serving)
    try:
        sender.start()
        server.serve_forever()  # the handler runs on this thread: stopping must not wait on it
    finally:
        sender.join(DEADLINE)
        signal.signal(signal.SIGUSR1, previous)
        server.server_close()
    assert server.active_requests == 0
