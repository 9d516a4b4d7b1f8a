"""Concurrency strategies: how a server schedules its requests."""

from ._base import BlockingConcurrency, Concurrency, Scheduler, Work
from ._forking import Forking, ForkScheduler, forking
from ._sync import Sync, sync
from ._threaded import Threaded, ThreadScheduler, threaded

__all__ = [
    "BlockingConcurrency",
    "Concurrency",
    "ForkScheduler",
    "Forking",
    "Scheduler",
    "Sync",
    "ThreadScheduler",
    "Threaded",
    "Work",
    "forking",
    "sync",
    "threaded",
]
