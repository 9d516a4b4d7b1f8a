"""Telling systemd how the service is doing, as ``sd_notify(3)`` does.

Under ``Type=notify`` systemd counts the service as started only once it says
``READY=1``, and it shows ``STATUS=`` in ``systemctl status``. systemd passes the
socket to write to in ``$NOTIFY_SOCKET``; without it every call here does nothing
and returns False, so the same code runs under systemd and anywhere else.
"""

from __future__ import annotations

import os
import socket
import time

from ._errors import ConfigurationError
from ._log import logger

__all__ = ["notify", "ready", "reloading", "status", "stopping"]


def notify(state: str) -> bool:
    """Send `state`, newline-separated ``NAME=value`` lines, to systemd.

    Returns True once sent, False when not under systemd (no ``$NOTIFY_SOCKET``)
    or when the socket cannot be reached. The latter is logged at debug level and
    never raised: a service keeps serving when its supervisor's socket is gone.
    """
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):
        # An abstract socket: systemd writes its leading NUL as "@".
        address = "\0" + address[1:]
    elif not address.startswith("/"):
        logger.debug("not notifying systemd: NOTIFY_SOCKET=%r is not a unix socket", address)
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(state.encode(), address)
    except OSError as exc:
        logger.debug("could not notify systemd at NOTIFY_SOCKET=%r: %s", address, exc)
        return False
    return True


def ready() -> bool:
    """Say that start-up (or a reload) is complete and the service is serving."""
    return notify("READY=1")


def reloading() -> bool:
    """Say that the service is reloading its configuration; send `ready` when done.

    systemd 253 and later (``Type=notify-reload``) want the time of the request
    on CLOCK_MONOTONIC, to match it with the READY=1 that ends the reload.
    """
    microseconds = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    return notify(f"RELOADING=1\nMONOTONIC_USEC={microseconds}")


def stopping() -> bool:
    """Say that the service is shutting down (draining), so systemd waits for it."""
    return notify("STOPPING=1")


def status(text: str) -> bool:
    """Show `text`, one line, in ``systemctl status``."""
    if "\n" in text:
        raise ConfigurationError(
            f"status text must be one line: a newline would start another assignment, {text!r}"
        )
    return notify(f"STATUS={text}")
