"""A real nginx for tests: a ``stream`` configuration as written, on a free loopback port.

nginx cannot take over a listening socket it did not open, so its ``listen`` is a
port that was free a moment before (`composerv.testing.free_port`); it runs in the
foreground, as one process, with its files in a temporary directory.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from composerv.testing import free_port

from .support import DEADLINE, required_program, stop_process, wait_until

# Debian builds the stream module as a dynamic module (package libnginx-mod-stream).
STREAM_MODULES = ("/usr/lib/nginx/modules/ngx_stream_module.so",)

CONFIG = """\
daemon off;
master_process off;
pid {directory}/nginx.pid;
error_log stderr info;
{load_module}
events {{
    worker_connections 64;
}}

{stream}
"""


@contextlib.contextmanager
def running_nginx_stream(stream: str, *, listen: str) -> Iterator[tuple[str, int]]:
    """Run nginx with the ``stream { ... }`` block `stream` as written, but for its
    ``listen LISTEN;``, which becomes a free port on 127.0.0.1; yields that address.
    nginx is stopped, and waited for, on exit."""
    assert f"listen {listen};" in stream and stream.startswith("stream {"), stream
    program = required_program("nginx", "nginx libnginx-mod-stream")
    address = ("127.0.0.1", free_port())
    module = next((m for m in STREAM_MODULES if os.path.exists(m)), None)
    with tempfile.TemporaryDirectory(prefix="csv-nginx-") as directory:
        config = Path(directory, "nginx.conf")
        config.write_text(
            CONFIG.format(
                directory=directory,
                load_module="" if module is None else f"load_module {module};",
                stream=stream.replace(f"listen {listen};", f"listen {address[0]}:{address[1]};"),
            )
        )
        log = Path(directory, "nginx.log")
        with open(log, "wb") as output:
            process = subprocess.Popen(
                [program, "-p", directory, "-e", "stderr", "-c", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_until(lambda: _listens(process, address, log), "nginx to listen")
            yield address
        finally:
            stop_process(process)


def _listens(process: subprocess.Popen[bytes], address: tuple[str, int], log: Path) -> bool:
    """True once nginx accepts on `address` (the probe, relayed, closes at once)."""
    if process.poll() is not None:
        raise AssertionError(f"nginx exited with {process.returncode}:\n{log.read_text()}")
    try:
        socket.create_connection(address, timeout=DEADLINE).close()
    except ConnectionRefusedError:
        return False
    return True
