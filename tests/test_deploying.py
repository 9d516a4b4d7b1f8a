"""The configurations of docs/deploying.md, run as written (on free loopback ports,
with the test's app): HAProxy and nginx's stream block in front of ``composerv run``
behind the PROXY protocol, the systemd units' ExecStart and ExecReload under socket
activation and ``$NOTIFY_SOCKET``, and the Kubernetes container's arguments and
grace period."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import tempfile
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from .cli import ROOT, Cli, running
from .haproxy import running_haproxy_config
from .nginx import running_nginx_stream
from .support import DEADLINE, ask_version, wait_until

pytestmark = pytest.mark.usefixtures("composerv_no_leaks")

DEPLOYING = Path(ROOT) / "docs" / "deploying.md"
APP = "tests.apps.versioned:handler"
CLIENT_HOST = "127.0.0.3"


def config(name: str) -> str:
    """The block of docs/deploying.md after the marker ``<!-- config: NAME -->``."""
    text = DEPLOYING.read_text()
    found = re.search(rf"<!-- config: {re.escape(name)} -->\n```\w*\n(.*?)^```$", text, re.S | re.M)
    assert found, f"no config block {name!r} in {DEPLOYING}"
    return found.group(1)


def composerv_args(command: list[str]) -> list[str]:
    """A documented ``composerv run myapp.server:handler ...`` as the test runs it: the
    test's app, and port 0 wherever the docs name a port on loopback."""
    assert command[:3] == ["composerv", "run", "myapp.server:handler"], command
    return ["run", APP, *[re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:0", a) for a in command[3:]]]


@contextmanager
def versioned_app(env: dict[str, str] | None = None) -> Iterator[dict[str, str]]:
    """The environment the versioned app reads its version from (``v1``)."""
    with tempfile.TemporaryDirectory(prefix="csv-deploy-") as directory:
        version = Path(directory, "version")
        version.write_text("v1")
        yield {**os.environ, **(env or {}), "COMPOSERV_TEST_VERSION_FILE": str(version)}


def scrape(address: tuple[str, int]) -> str:
    with urllib.request.urlopen(
        f"http://{address[0]}:{address[1]}/metrics", timeout=DEADLINE
    ) as reply:
        return str(reply.read().decode())


def host_port(url: str) -> tuple[str, int]:
    host, _, port = url.split("://", 1)[-1].rpartition(":")
    return host.strip("[]"), int(port)


def metrics_address(cli: Cli) -> tuple[str, int]:
    return host_port(cli.wait_for(r"serving metrics on http://(\S+)/metrics").group(1))


def both_workers(cli: Cli) -> None:
    first = cli.wait_for(r"started worker (\d+)").group(1)
    cli.wait_for(rf"started worker (?!{first}\b)\d+")


def test_haproxy_in_front_of_composerv_as_documented() -> None:
    (command,) = config("behind-haproxy").strip().splitlines()
    with versioned_app() as env, running(*composerv_args(shlex.split(command)), env=env) as cli:
        backend = host_port(cli.wait_for(r"listening on (\S+) \(PROXY protocol").group(1))
        metrics = metrics_address(cli)
        both_workers(cli)
        with running_haproxy_config(
            config("haproxy.cfg").replace("127.0.0.1:8001", f"{backend[0]}:{backend[1]}"),
            bind=":8000",
        ) as haproxy:
            wait_until(
                lambda: haproxy.server_status("myapp_servers", "app1") == "UP",
                "the health checks to pass",
            )
            for _ in range(5):
                version, _, host, _ = ask_version(haproxy.address, source=CLIENT_HOST)
                assert (version, host) == ("v1", CLIENT_HOST)
            cli.proc.send_signal(signal.SIGHUP)
            cli.wait_for(r"reloaded \S+ in")
            assert ask_version(haproxy.address, source=CLIENT_HOST)[2] == CLIENT_HOST
            assert haproxy.server_status("myapp_servers", "app1") == "UP"
        assert "composerv_requests_total{" in scrape(metrics)
        # --shutdown-delay 5: a second SIGTERM cuts the delay short.
        cli.proc.send_signal(signal.SIGTERM)
        cli.wait_for(r"serving for 5s more before draining")
        cli.proc.send_signal(signal.SIGTERM)
        cli.wait_for("draining now")
        assert cli.finish() == 0


def test_nginx_in_front_of_composerv_as_documented() -> None:
    """nginx's stream block, with the command line behind HAProxy: PROXY v1."""
    (command,) = config("behind-haproxy").strip().splitlines()
    with versioned_app() as env, running(*composerv_args(shlex.split(command)), env=env) as cli:
        backend = host_port(cli.wait_for(r"listening on (\S+) \(PROXY protocol").group(1))
        both_workers(cli)
        stream = config("nginx.conf").replace("127.0.0.1:8001", f"{backend[0]}:{backend[1]}")
        with running_nginx_stream(stream, listen="8000") as nginx:
            for _ in range(5):
                version, _, host, port = ask_version(nginx, source=CLIENT_HOST)
                assert (version, host) == ("v1", CLIENT_HOST)
                assert int(port) > 0
        cli.proc.send_signal(signal.SIGTERM)
        cli.wait_for(r"serving for 5s more before draining")
        cli.proc.send_signal(signal.SIGTERM)
        assert cli.finish() == 0


def _unit(name: str) -> dict[str, str]:
    """A systemd unit block's settings (the last of each name)."""
    return dict(
        line.split("=", 1)
        for line in config(name).splitlines()
        if "=" in line and not line.startswith("#")
    )


def test_systemd_units_as_documented(unix_path: str) -> None:
    service = _unit("myapp.service")
    assert service["Type"] == "notify"
    sockets = service["Sockets"].split()
    names = [_unit(unit)["FileDescriptorName"] for unit in sockets]
    exec_start = shlex.split(service["ExecStart"])
    assert exec_start[0].endswith("/bin/composerv")
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    listeners = [socket.create_server(("127.0.0.1", 0)) for _ in sockets]
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        notify.bind(unix_path)
        notify.settimeout(DEADLINE)
        fds = [listener.fileno() for listener in listeners]
        # As systemd passes them: descriptors 3, 4... in the order of Sockets=, named.
        moves = " ".join(f"{3 + i}<&{fd}" for i, fd in enumerate(fds))
        wrapper = (
            f"LISTEN_PID=$$ LISTEN_FDS={len(fds)} LISTEN_FDNAMES={':'.join(names)} "
            f'exec "$0" "$@" {moves}'
        )
        with (
            versioned_app({"NOTIFY_SOCKET": unix_path}) as env,
            running(
                *composerv_args(["composerv", *exec_start[1:]]),
                wrapper=wrapper,
                pass_fds=fds,
                env=env,
            ) as cli,  # fmt: skip
        ):
            assert notify.recv(4096) == b"READY=1"
            web = listeners[names.index("web")].getsockname()
            metrics = listeners[names.index("metrics")].getsockname()
            both_workers(cli)
            assert ask_version(web)[0] == "v1"
            assert "composerv_connections_total{" in scrape(metrics)
            cli.proc.send_signal(signal.SIGHUP)  # ExecReload
            assert notify.recv(4096).startswith(b"RELOADING=1\n")
            assert notify.recv(4096) == b"READY=1"
            cli.proc.send_signal(signal.SIGTERM)  # systemctl stop
            assert notify.recv(4096) == b"STOPPING=1"
            assert cli.finish() == 0
    finally:
        notify.close()
        for listener in listeners:
            listener.close()


def test_kubernetes_container_as_documented() -> None:
    manifest = config("kubernetes")
    (args,) = re.findall(r"^\s*args: (\[.*\])$", manifest, re.M)
    command = json.loads(args)
    grace = int(re.search(r"terminationGracePeriodSeconds: (\d+)", manifest).group(1))  # type: ignore[union-attr]
    options = dict(zip(command[3::2], command[4::2], strict=False))
    # The grace period covers the lame-duck delay and the drain after it.
    assert grace > float(options["--shutdown-delay"]) + float(options["--drain"])
    # In a pod it binds every interface; here, loopback.
    command = [a.replace("0.0.0.0", "127.0.0.1") for a in command]
    with versioned_app() as env, running(*composerv_args(command), env=env) as cli:
        address = host_port(cli.wait_for(r"listening on (\S+)").group(1))
        metrics_address(cli)
        both_workers(cli)
        cli.proc.send_signal(signal.SIGTERM)
        cli.wait_for(r"serving for 10s more before draining")
        assert ask_version(address)[0] == "v1"  # still served while the endpoints update
        cli.proc.send_signal(signal.SIGTERM)
        assert cli.finish() == 0
