"""composerv.testing: each helper used as a user would, and each way it fails."""

from __future__ import annotations

import doctest
import importlib.util
import inspect
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

import attrs
import pytest

import composerv.testing
from compat import socketserver
from composerv import (
    Connection,
    HandlerMismatchError,
    MessageTooLargeError,
    RequestContext,
    TruncatedMessageError,
    datagram_handler,
    datagrams,
    evented,
    length_prefixed,
    limits,
    lines,
    message_handler,
    request_handler,
    serve,
    stream_handler,
    tcp,
    threaded,
    tls,
)
from composerv.abc import Handler, MessageFn, MessageForm
from composerv.testing import (
    Resources,
    connect_handler,
    free_port,
    no_leaks,
    run_bytes,
    run_messages,
    serving,
    tls_certificate,
    tls_contexts,
    wait_until,
)
from composerv.testing._tls import certificate_maker

from .support import DEADLINE, connect, recv_exactly, recv_until_eof
from .typecheck import CHECKERS, Checker, snippet_errors

pytest_plugins = ["pytester"]

# What the failure tests wait for leaks to settle: they leak on purpose, so waiting
# the default two seconds would only slow them down.
SHORT_SETTLE = 0.05


def echo(conn: Connection) -> None:
    while data := conn.recv():
        conn.send_all(data)


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Set at teardown: what a test left blocked on purpose ends then."""
    event = threading.Event()
    yield event
    event.set()


def test_all_is_sorted_documented_and_complete() -> None:
    names = composerv.testing.__all__
    assert list(names) == sorted(names)
    public = {name for name in vars(composerv.testing) if not name.startswith("_")}
    modules = {name for name in public if inspect.ismodule(getattr(composerv.testing, name))}
    assert public - modules == set(names)
    for name in names:
        assert inspect.getdoc(getattr(composerv.testing, name)), f"{name} has no docstring"


@pytest.mark.parametrize("checker", CHECKERS)
def test_a_typed_users_tests_type_check(checker: Checker) -> None:
    """tests/typing/testing_helpers.py: `serving` keeps the server's type, and so on."""
    assert snippet_errors(checker, "testing_helpers.py") == {"testing_helpers.py": {}}


@pytest.mark.parametrize("module", ["_wait", "_leaks", "_messages"])
def test_docstring_examples_run(module: str) -> None:
    result = doctest.testmod(getattr(composerv.testing, module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


# serving


def test_serving_runs_a_server_and_closes_it(composerv_no_leaks: None) -> None:
    server = serve(tcp(("127.0.0.1", 0)), threaded(), stream_handler(echo))
    with serving(server) as running:
        assert running is server
        assert server.serving
        with connect(server.address) as client:
            client.sendall(b"hi")
            assert recv_exactly(client, 2) == b"hi"
    assert server.closed
    assert not server.serving
    assert "composerv-testing-serve-forever" not in {t.name for t in threading.enumerate()}


def test_serving_runs_a_classic_server(composerv_no_leaks: None) -> None:
    class Echo(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            self.wfile.write(self.rfile.readline())

    server = socketserver.TCPServer(("127.0.0.1", 0), Echo)
    with serving(server, poll_interval=0.05), connect(server.server_address) as client:
        client.sendall(b"line\n")
        assert recv_until_eof(client) == b"line\n"


def test_serving_fails_naming_a_thread_the_handler_left_running(
    composerv_no_leaks: None, release: threading.Event
) -> None:
    # composerv_no_leaks first: its check runs after `release` ends the thread.
    def leaky(conn: Connection) -> None:
        threading.Thread(target=release.wait, name="forgotten-worker").start()
        conn.send_all(b"ok")

    server = serve(tcp(("127.0.0.1", 0)), threaded(), stream_handler(leaky))
    with pytest.raises(AssertionError, match=r"threads: 'forgotten-worker'"):
        with serving(server, settle=SHORT_SETTLE), connect(server.address) as client:
            assert recv_until_eof(client) == b"ok"


def test_serving_fails_naming_a_socket_the_handler_left_open(composerv_no_leaks: None) -> None:
    kept: list[socket.socket] = []

    def leaky(conn: Connection) -> None:
        kept.append(socket.socket())
        conn.send_all(b"ok")

    server = serve(tcp(("127.0.0.1", 0)), threaded(), stream_handler(leaky))
    try:
        with pytest.raises(AssertionError, match=r"descriptors: \d+ \(socket:\[\d+\]\)"):
            with serving(server, settle=SHORT_SETTLE), connect(server.address) as client:
                assert recv_until_eof(client) == b"ok"
    finally:
        for sock in kept:
            sock.close()


def test_serving_without_leak_checks_lets_the_block_keep_resources(
    composerv_no_leaks: None,
) -> None:
    server = serve(tcp(("127.0.0.1", 0)), threaded(), stream_handler(echo))
    with serving(server, check_leaks=False):
        kept = connect(server.address)
    kept.close()


def test_serving_raises_what_serve_forever_raised(composerv_no_leaks: None) -> None:
    server = serve(tcp(("127.0.0.1", 0)), threaded(), stream_handler(echo))
    server.server_close()
    with pytest.raises(RuntimeError, match="this server is closed"):
        with serving(server):
            pytest.fail("the block ran although the server could not serve")


@attrs.define
class StuckServer:
    """A server whose loop ignores shutdown(), or whose shutdown() never returns."""

    release: threading.Event
    stuck_in: Literal["serve_forever", "shutdown"]
    closed: bool = False

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        self.release.wait()

    def shutdown(self) -> None:
        if self.stuck_in == "shutdown":
            self.release.wait()

    def server_close(self) -> None:
        self.closed = True


@pytest.mark.parametrize(
    ("stuck_in", "message"),
    [
        ("shutdown", r"shutdown\(\) of StuckServer.* did not return within 0.2s"),
        ("serve_forever", r"serve_forever\(\) did not return within 0.2s of shutdown\(\)"),
    ],
)
def test_serving_fails_on_a_server_that_does_not_stop(
    stuck_in: Literal["serve_forever", "shutdown"], message: str, release: threading.Event
) -> None:
    server = StuckServer(release, stuck_in)
    with pytest.raises(AssertionError, match=message):
        with serving(server, timeout=0.2):
            pass
    assert server.closed


# no_leaks and Resources


def test_no_leaks_passes_a_block_that_cleans_up() -> None:
    with no_leaks() as before:
        assert isinstance(before, Resources)
        assert threading.current_thread() in before.threads
        r, w = os.pipe()
        os.close(r)
        os.close(w)


def test_no_leaks_names_a_descriptor_left_open() -> None:
    with pytest.raises(AssertionError, match=r"descriptors: (\d+) \(pipe:\[\d+\]\), \d+ \(pipe:"):
        with no_leaks(settle=SHORT_SETTLE):
            r, w = os.pipe()
    os.close(r)
    os.close(w)


def test_no_leaks_names_a_thread_left_running(release: threading.Event) -> None:
    with pytest.raises(AssertionError, match=r"threads: 'still-here'\Z"):
        with no_leaks(settle=SHORT_SETTLE):
            threading.Thread(target=release.wait, name="still-here").start()


def test_no_leaks_names_a_child_process_left_unreaped() -> None:
    with pytest.raises(AssertionError, match=r"child processes: (\d+)") as caught:
        with no_leaks(settle=SHORT_SETTLE):
            child = subprocess.Popen([sys.executable, "-c", ""])
            child_pid = child.pid
    try:
        assert caught.match(rf"child processes: {child_pid}\b")
    finally:
        child.wait(DEADLINE)


def test_no_leaks_waits_for_a_thread_that_is_ending() -> None:
    finish = threading.Event()
    with no_leaks():
        threading.Thread(target=finish.wait, name="ending").start()
        finish.set()  # the thread may still run as the block ends; it is given time


def test_no_leaks_does_not_check_a_block_that_raised() -> None:
    kept = socket.socket()
    try:
        with pytest.raises(KeyError):
            with no_leaks(settle=SHORT_SETTLE):
                kept.close()
                kept = socket.socket()
                raise KeyError("the block's own error")
    finally:
        kept.close()


@pytest.mark.skipif(importlib.util.find_spec("uvloop") is None, reason="needs uvloop")
def test_no_leaks_does_not_count_uvloops_process_wide_pipe() -> None:
    # In a fresh interpreter, so this block runs the process's first uvloop loop.
    program = (
        "import uvloop\n"
        "from composerv.testing import no_leaks\n"
        "with no_leaks(settle=0.1):\n"
        "    uvloop.new_event_loop().close()\n"
    )
    subprocess.run([sys.executable, "-c", program], check=True, timeout=DEADLINE)


def test_resources_describes_what_is_new() -> None:
    before = Resources.now()
    r, w = os.pipe()
    try:
        new = Resources.now().new_since(before)
        assert {fd for fd, _ in new.fds} == {r, w}
        assert not new.empty
        assert new.describe().startswith("descriptors: ")
    finally:
        os.close(r)
        os.close(w)
    assert Resources.now().new_since(before).describe() == "nothing"


def test_resources_count_a_reused_descriptor_number_as_new() -> None:
    r, w = os.pipe()
    before = Resources.now()
    os.close(w)
    fd = os.open(os.devnull, os.O_RDONLY)  # most likely w's number again
    try:
        assert Resources.now().new_since(before).fds == {(fd, os.devnull)}
    finally:
        os.close(fd)
        os.close(r)


def test_wait_until_fails_naming_what_it_waited_for() -> None:
    with pytest.raises(AssertionError, match=r"timed out after 0\.01s waiting for the answer"):
        wait_until(lambda: False, "the answer", timeout=0.01)


# run_messages and run_bytes


@attrs.frozen
class Counting(Handler[socket.socket]):
    """A handler with state per connection, as a session is: each reply numbers its message.

    Only its event-loop form matters to the helpers (and to evented()).
    """

    kind: ClassVar[Literal["stream", "datagram"]] = "stream"

    opened: list[RequestContext] = attrs.field(factory=list, eq=False)
    framing: Any = attrs.field(factory=lines)

    def handle(self, request: socket.socket, context: RequestContext) -> None:
        raise AssertionError("only its event-loop form runs")

    def for_event_loop(self) -> MessageForm:
        return MessageForm(self.framing, self._open)

    def _open(self, context: RequestContext) -> MessageFn:
        self.opened.append(context)
        count = 0

        def reply(message: bytes) -> bytes | None:
            nonlocal count
            count += 1
            return None if message == b"quiet" else b"%d %s" % (count, message)

        return reply


def test_run_messages_returns_the_replies_in_order() -> None:
    handler = message_handler(lambda m: None if m == b"skip" else m.upper())
    assert run_messages(handler, [b"a", b"skip", b"b"]) == [b"A", b"B"]


def test_run_messages_opens_a_stateful_handler_once_per_connection() -> None:
    handler = Counting()
    replies = run_messages(handler, [b"x", b"quiet", b"y"], peer=("127.0.0.2", 4321))
    assert replies == [b"1 x", b"3 y"]
    [context] = handler.opened
    assert context.peer == ("127.0.0.2", 4321)
    assert context.limits == limits()


def test_run_messages_opens_a_datagram_handler_once_per_datagram() -> None:
    handler = Counting(framing=datagrams())
    assert run_messages(handler, [b"x", b"y"]) == [b"1 x", b"1 y"]
    assert len(handler.opened) == 2


def test_run_messages_refuses_a_blocking_handler() -> None:
    with pytest.raises(HandlerMismatchError, match="connect_handler") as caught:
        run_messages(stream_handler(echo), [b"x"])
    assert isinstance(caught.value, TypeError)


def test_run_messages_refuses_what_is_not_a_handler() -> None:
    with pytest.raises(TypeError, match=r"a handler value such as message_handler\(fn\)"):
        run_messages(bytes.upper, [b"x"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("framing", "data", "expected"),
    [
        (lines(), b"one\ntwo\n", b"ONE\nTWO\n"),
        (lines(), [b"o", b"ne\nt", b"", b"wo\n"], b"ONE\nTWO\n"),
        (length_prefixed(header_size=2), b"\x00\x02hi\x00\x00", b"\x00\x02HI\x00\x00"),
        (length_prefixed(header_size=1), [b"\x03", b"ab", b"c"], b"\x03ABC"),
    ],
    ids=["lines", "lines-in-chunks", "prefixed", "prefixed-in-chunks"],
)
def test_run_bytes_cuts_and_frames_with_the_handler_framing(
    framing: Any, data: Any, expected: bytes
) -> None:
    assert run_bytes(message_handler(bytes.upper, framing), data) == expected


def test_run_bytes_sends_what_a_served_handler_sends(composerv_no_leaks: None) -> None:
    handler = message_handler(lambda m: None if m == b"skip" else m[::-1])
    data = b"abc\nskip\n\nxyz\n"
    server = serve(tcp(("127.0.0.1", 0)), evented(), handler)
    with serving(server), connect(server.address) as client:
        client.sendall(data)
        client.shutdown(socket.SHUT_WR)
        assert recv_until_eof(client) == run_bytes(handler, data) == b"cba\n\nzyx\n"


def test_run_bytes_raises_where_a_server_closes_the_connection() -> None:
    handler = message_handler(bytes.upper, lines(max_size=4))
    with pytest.raises(TruncatedMessageError):
        run_bytes(handler, b"one\ntw")
    with pytest.raises(MessageTooLargeError):
        run_bytes(handler, b"one\ntoo long\n")


def test_run_bytes_refuses_a_datagram_handler() -> None:
    with pytest.raises(HandlerMismatchError, match="run_messages"):
        run_bytes(message_handler(bytes.upper, datagrams()), b"x")


# connect_handler


def greet(conn: Connection) -> None:
    conn.send_all(b"hello " + conn.readline())


@pytest.mark.parametrize(
    ("handler", "reads_to_the_end"),
    [
        (greet, False),
        (stream_handler(greet), False),
        (message_handler(lambda name: b"hello " + name), True),
    ],
    ids=["function", "stream_handler", "message_handler"],
)
def test_connect_handler_serves_one_connection(handler: Any, reads_to_the_end: bool) -> None:
    with connect_handler(handler) as client:
        client.sendall(b"you\n")
        assert recv_exactly(client, 10) == b"hello you\n"
        if reads_to_the_end:
            client.shutdown(socket.SHUT_WR)
        assert recv_until_eof(client) == b"", "the handler's end closes when it returns"


def test_connect_handler_serves_a_classic_handler() -> None:
    class Upper(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            self.wfile.write(self.rfile.readline().upper())

    with connect_handler(request_handler(Upper)) as client:
        client.sendall(b"classic\n")
        assert recv_until_eof(client) == b"CLASSIC\n"


def test_connect_handler_keeps_the_limits() -> None:
    with pytest.raises(TimeoutError, match=r"idle_timeout=0\.05s"):
        with connect_handler(greet, limits=limits(idle_timeout=0.05)) as client:
            assert recv_until_eof(client) == b""  # the handler timed out and returned


def test_connect_handler_raises_what_the_handler_raised() -> None:
    def fails(conn: Connection) -> None:
        raise ValueError("bad request: " + conn.readline().decode())

    with pytest.raises(ValueError, match="bad request: x"):
        with connect_handler(fails) as client:
            client.sendall(b"x")
            client.shutdown(socket.SHUT_WR)


def test_connect_handler_fails_naming_a_handler_that_does_not_return(
    release: threading.Event,
) -> None:
    def stuck(conn: Connection) -> None:
        release.wait()

    with pytest.raises(AssertionError, match=r"StreamHandler.*still running 0.1s after"):
        with connect_handler(stuck, timeout=0.1):
            pass


def test_connect_handler_refuses_a_datagram_handler() -> None:
    with pytest.raises(TypeError, match="needs a stream handler"):
        with connect_handler(datagram_handler(print)):  # type: ignore[arg-type]
            pass


# free_port


@pytest.mark.parametrize("kind", [socket.SOCK_STREAM, socket.SOCK_DGRAM], ids=["tcp", "udp"])
@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_free_port_can_be_bound(host: str, kind: socket.SocketKind) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    if family == socket.AF_INET6 and not socket.has_ipv6:
        pytest.skip("no IPv6")
    port = free_port(host, kind)
    assert 0 < port < 65536
    with socket.socket(family, kind) as sock:
        sock.bind((host, port))


# TLS


def echo_over_tls(server_context: ssl.SSLContext, client_context: ssl.SSLContext) -> None:
    server = serve(tls(tcp(("127.0.0.1", 0)), server_context), threaded(), stream_handler(echo))
    with serving(server):
        with client_context.wrap_socket(
            connect(server.address), server_hostname="127.0.0.1"
        ) as client:
            client.sendall(b"secret")
            assert recv_exactly(client, 6) == b"secret"


def test_tls_contexts_make_a_verified_connection(composerv_no_leaks: None) -> None:
    server_context, client_context = tls_contexts()
    assert client_context.verify_mode == ssl.CERT_REQUIRED and client_context.check_hostname
    echo_over_tls(server_context, client_context)


def test_tls_contexts_are_new_each_time() -> None:
    first, second = tls_contexts(), tls_contexts()
    assert first.server is not second.server and first.client is not second.client
    assert tls_certificate() is tls_certificate()


def test_a_certificate_made_with_openssl_works(
    monkeypatch: pytest.MonkeyPatch, composerv_no_leaks: None
) -> None:
    monkeypatch.setitem(sys.modules, "trustme", None)  # as if it were not installed
    make = certificate_maker()
    if make is None:
        pytest.skip("no openssl command")
    certificate = make()
    assert certificate.ca_pem == certificate.certificate_pem  # self-signed
    echo_over_tls(certificate.server_context(), certificate.client_context())


def test_without_trustme_or_openssl_a_certificate_cannot_be_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "trustme", None)
    monkeypatch.setenv("PATH", "")
    assert certificate_maker() is None
    with pytest.raises(RuntimeError, match=r"install trustme .* or put the openssl command"):
        tls_certificate.__wrapped__()


def test_certificate_files_load(tmp_path: Path, composerv_no_leaks: None) -> None:
    certificate, key = tls_certificate().write(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate, key)
    echo_over_tls(context, tls_certificate().client_context())


# The pytest plugin, in a project of its own that has composerv installed

USER_TESTS = """
import socket
import threading

from composerv import Connection, serve, stream_handler, tcp, threaded, tls


def echo(conn: Connection) -> None:
    while data := conn.recv():
        conn.send_all(data)


def test_serving(composerv_serving, composerv_no_leaks):
    # The servers stop before the leak check, whichever fixture comes first.
    server = composerv_serving(serve(tcp(("127.0.0.1", 0)), threaded(), stream_handler(echo)))
    assert server.serving
    with socket.create_connection(server.address, timeout=10) as client:
        client.sendall(b"ping")
        assert client.recv(4) == b"ping"


def test_tls(composerv_serving, composerv_tls):
    transport = tls(tcp(("127.0.0.1", 0)), composerv_tls.server)
    server = composerv_serving(serve(transport, threaded(), stream_handler(echo)))
    raw = socket.create_connection(server.address, timeout=10)
    with composerv_tls.client.wrap_socket(raw, server_hostname="127.0.0.1") as client:
        client.sendall(b"secret")
        assert client.recv(6) == b"secret"


def test_free_tcp_port(free_tcp_port):
    server = serve(tcp(("127.0.0.1", free_tcp_port)), threaded(), stream_handler(echo))
    with server:
        assert server.address[1] == free_tcp_port


RELEASE = threading.Event()


def test_leaks_a_thread(composerv_no_leaks):
    threading.Thread(target=RELEASE.wait, name="left-behind", daemon=True).start()


def test_serves_a_leaky_handler(composerv_serving):
    def leaky(conn: Connection) -> None:
        threading.Thread(target=RELEASE.wait, name="leaked-by-handler", daemon=True).start()
        conn.send_all(b"started")

    server = composerv_serving(
        serve(tcp(("127.0.0.1", 0)), threaded(), stream_handler(leaky)), settle=0.05
    )
    with socket.create_connection(server.address, timeout=10) as client:
        assert client.recv(7) == b"started"


def test_last_releases_the_threads():
    RELEASE.set()
"""


def test_the_plugin_gives_an_installed_project_its_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "error", "-v")
    result.stdout.fnmatch_lines(["plugins:*composerv-*"])
    result.assert_outcomes(passed=6, errors=2)  # two pass, then fail at teardown
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_leaks_a_thread*",
            "*left behind after 2.0s:*",
            "*threads: 'left-behind'*",
            "*ERROR at teardown of test_serves_a_leaky_handler*",
            "*threads: 'leaked-by-handler'*",
        ]
    )


def test_the_plugin_can_be_disabled(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_fixture(composerv_no_leaks):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:composerv")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'composerv_no_leaks' not found*"])


def test_the_guide_examples_pass_as_one_test_file(pytester: pytest.Pytester) -> None:
    """docs/testing.md says its code blocks, put together, are a test file that passes."""
    guide = (Path(__file__).resolve().parent.parent / "docs" / "testing.md").read_text()
    source = "\n".join(re.findall(r"```python\n(.*?)```", guide, re.DOTALL))
    tests = re.findall(r"^def (test_\w+)", source, re.MULTILINE)
    assert len(tests) >= 10
    pytester.makepyfile(test_guide=source)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "error")
    result.assert_outcomes(passed=len(tests))


def test_the_suite_uses_the_plugin_fixtures_instead_of_its_own() -> None:
    from . import conftest

    for name in composerv.testing._plugin.__all__:
        assert not hasattr(conftest, name), f"tests/conftest.py shadows the plugin's {name}"
