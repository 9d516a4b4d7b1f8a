"""Running the real command line in a subprocess, with deadlines on every wait."""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from .support import DEADLINE

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LISTENING = re.compile(r"listening on (\S+)")


class Cli:
    """A running ``python -m composerv``; its stderr is read line by line with deadlines."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._selector = selectors.DefaultSelector()
        assert proc.stderr is not None
        os.set_blocking(proc.stderr.fileno(), False)
        self._selector.register(proc.stderr, selectors.EVENT_READ)
        self._partial = b""

    def wait_for(self, pattern: str, timeout: float = DEADLINE) -> re.Match[str]:
        """The first stderr line (seen before or from now on) that matches `pattern`."""
        regex = re.compile(pattern)
        seen = 0
        deadline = time.monotonic() + timeout
        while True:
            for line in self.lines[seen:]:
                if match := regex.search(line):
                    return match
            seen = len(self.lines)
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._read(remaining):
                raise AssertionError(
                    f"no stderr line matched {pattern!r} in {timeout}s; stderr was:\n"
                    + "\n".join(self.lines)
                )

    def _read(self, timeout: float) -> bool:
        """Read what stderr has within `timeout`; False at EOF or timeout."""
        assert self.proc.stderr is not None
        if not self._selector.select(timeout):
            return False
        chunk = self.proc.stderr.read(65536)
        if not chunk:
            return False
        *complete, self._partial = (self._partial + chunk).split(b"\n")
        self.lines.extend(line.decode(errors="replace") for line in complete)
        return True

    def listening(self) -> str:
        return self.wait_for(LISTENING.pattern).group(1)

    def finish(self, timeout: float = DEADLINE) -> int:
        """Wait for the process to exit and read the rest of stderr; return its status."""
        status = self.proc.wait(timeout)
        while self._read(0):
            pass
        if self._partial:
            self.lines.append(self._partial.decode(errors="replace"))
            self._partial = b""
        return status

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(DEADLINE)
        self._selector.close()
        assert self.proc.stderr is not None
        self.proc.stderr.close()


def spawn(
    args: Sequence[str], *, wrapper: str | None = None, **kwargs: object
) -> subprocess.Popen[bytes]:
    """Start ``python -m composerv ARGS``; `wrapper` is a bash script that execs ``"$0" "$@"``."""
    command = [sys.executable, "-m", "composerv", *args]
    if wrapper is not None:
        command = ["/bin/bash", "-c", wrapper, *command]
    return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
        command,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        **kwargs,
    )


@contextmanager
def running(*args: str, wrapper: str | None = None, **kwargs: object) -> Iterator[Cli]:
    """``python -m composerv ARGS...`` in a subprocess, killed if still running at the end."""
    cli = Cli(spawn(args, wrapper=wrapper, **kwargs))
    try:
        yield cli
    finally:
        cli.close()


def run_to_exit(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the command line to its end; it must exit within the deadline."""
    return subprocess.run(
        [sys.executable, "-m", "composerv", *args],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )


def inet(url: str) -> tuple[str, int]:
    """``(host, port)`` from a ``tcp://host:port`` URL the CLI logged."""
    host, _, port = url.split("://", 1)[1].rpartition(":")
    return host.strip("[]"), int(port)
