"""`current_pid`: this process's id, without a system call each time it is asked.

glibc stopped caching getpid() (2.25), so ``os.getpid()`` is a system call; the
runtime asks on every request (am I the owner of the tally, or a forked child?),
which cost three system calls per datagram, more than its recvfrom and sendto.
A fork is the only way the answer changes under a running server, and every
``os.fork`` runs the hook below in the child.
"""

from __future__ import annotations

import os

__all__ = ["current_pid"]

# One cell, rewritten in a forked child.
_PID = [os.getpid()]


def current_pid() -> int:
    """This process's id (``os.getpid()``), kept up to date across forks."""
    return _PID[0]


def _after_fork_in_child() -> None:
    _PID[0] = os.getpid()


os.register_at_fork(after_in_child=_after_fork_in_child)
