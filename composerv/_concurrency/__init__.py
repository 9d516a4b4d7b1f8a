"""Concurrency strategies: how a server schedules its requests."""

from ._asyncio import AsyncioLoop, asyncio_loop
from ._base import (
    BlockingConcurrency,
    Built,
    Concurrency,
    EventLoop,
    EventLoopConcurrency,
    Loop,
    Scheduler,
    Work,
)
from ._evented import Evented, evented
from ._forking import Forking, ForkScheduler, forking
from ._pooled import Pooled, PoolFullError, PoolScheduler, pooled
from ._sync import Sync, sync
from ._threaded import Threaded, ThreadScheduler, threaded
from ._workers import Supervisor, WorkerPool, Workers, workers

__all__ = [
    "AsyncioLoop",
    "BlockingConcurrency",
    "Built",
    "Concurrency",
    "EventLoop",
    "EventLoopConcurrency",
    "Evented",
    "ForkScheduler",
    "Forking",
    "Loop",
    "PoolFullError",
    "PoolScheduler",
    "Pooled",
    "Scheduler",
    "Supervisor",
    "Sync",
    "ThreadScheduler",
    "Threaded",
    "Work",
    "WorkerPool",
    "Workers",
    "asyncio_loop",
    "evented",
    "forking",
    "pooled",
    "sync",
    "threaded",
    "workers",
]
