"""Concurrency strategies: how a server schedules its requests."""

from ._base import BlockingConcurrency, Concurrency, Scheduler, Work
from ._forking import Forking, ForkScheduler, forking
from ._sync import Sync, sync
from ._threaded import Threaded, ThreadScheduler, threaded
from ._workers import Supervisor, WorkerPool, Workers, workers

__all__ = [
    "BlockingConcurrency",
    "Concurrency",
    "ForkScheduler",
    "Forking",
    "Scheduler",
    "Supervisor",
    "Sync",
    "ThreadScheduler",
    "Threaded",
    "Work",
    "WorkerPool",
    "Workers",
    "forking",
    "sync",
    "threaded",
    "workers",
]
