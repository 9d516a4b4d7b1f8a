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
from .support import (
    DEADLINE,
    assert_refused_while,
    connect,
    recv_exactly,
    serving,
    wait_delivered,
    wait_until,
)


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
def test_in_process_serve_forever_and_shutdown(inner: Any, composerv_no_leaks: None) -> None:
    server = serve(tcp(("127.0.0.1", 0)), workers(2, inner), stream_handler(_pid_handler))
    with serving(server):
        wait_until(lambda: server.active_requests == 2, "two workers")
        pids = {_served_by(server.address) for _ in range(10)}
        assert os.getpid() not in pids
        assert pids <= _children(os.getpid())
    assert all(_gone(pid) for pid in pids)


def _pid_message(message: bytes) -> bytes:
    return b"%d" % os.getpid()


def test_each_worker_runs_its_own_event_loop_and_drains_it(composerv_no_leaks: None) -> None:
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


def test_shutdown_from_a_signal_handler_on_the_supervising_thread(composerv_no_leaks: None) -> None:
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


STOP_CYCLES = 20


def _echo(conn: Connection) -> None:
    while line := conn.readline():
        conn.send_all(line)


@pytest.mark.parametrize(
    ("inner", "handler"),
    [(threaded(), stream_handler(_echo)), (evented(), message_handler(lambda line: line))],
    ids=["threaded", "evented"],
)
def test_workers_drain_at_once_cycle_after_cycle(
    inner: Any, handler: Any, caplog: pytest.LogCaptureFixture, composerv_no_leaks: None
) -> None:
    """Workers drained while one serves a busy connection and holds an idle one, and
    while the other may still be starting: no worker misses its order and is killed.
    (On 3.13.0 a Python SIGTERM handler in a worker forked from a thread other than
    the main one usually never ran: workers were killed at the deadline.)"""
    for cycle in range(STOP_CYCLES):
        caplog.clear()
        server = serve(tcp(("127.0.0.1", 0)), workers(2, inner), handler)
        with serving(server):
            with connect(server.address) as idle, connect(server.address) as busy:
                for sock in (idle, busy):
                    sock.sendall(b"ping\n")
                    assert recv_exactly(sock, 5) == b"ping\n"
                busy.sendall(b"pi")  # a request in flight: the drain waits for it
                wait_delivered(busy)
                started = time.monotonic()
                stopper = threading.Thread(target=server.shutdown, kwargs={"drain": 5.0})
                stopper.start()
                assert idle.recv(1) == b"", f"cycle {cycle}: the idle connection stays open"
                busy.sendall(b"ng\n")
                assert recv_exactly(busy, 5) == b"ping\n"
                assert busy.recv(1) == b""
                stopper.join(DEADLINE)
                took = time.monotonic() - started
        assert "did not stop in time" not in caplog.text, f"cycle {cycle}: a worker was killed"
        assert took < 2.0, f"cycle {cycle}: draining took {took:.1f}s"
        # Each worker drains when its order comes: if the busy connection's worker
        # gets it after that request was answered, the connection is idle by then.
        report = server.drain_report
        assert report is not None, cycle
        assert (report.finished + report.closed_idle, report.cut) == (2, 0), (cycle, report)
        assert report.closed_idle >= 1, (cycle, report)
