"""Concurrency strategies: how a server schedules its requests."""

from ._asyncio import AsyncioLoop, asyncio_loop
from ._base import BlockingConcurrency, EventLoopConcurrency
from ._evented import Evented, evented
from ._forking import Forking, ForkScheduler, forking
from ._pooled import Pooled, PoolScheduler, pooled
from ._sync import InlineScheduler, Sync, sync
from ._threaded import Threaded, ThreadScheduler, threaded
from ._workers import Workers, WorkerSupervisor, workers

__all__ = [
    "AsyncioLoop",
    "BlockingConcurrency",
    "EventLoopConcurrency",
    "Evented",
    "ForkScheduler",
    "Forking",
    "InlineScheduler",
    "PoolScheduler",
    "Pooled",
    "Sync",
    "ThreadScheduler",
    "Threaded",
    "WorkerSupervisor",
    "Workers",
    "asyncio_loop",
    "evented",
    "forking",
    "pooled",
    "sync",
    "threaded",
    "workers",
]
