"""The runtime: the contract between a server and its concurrency, and what every
runtime family shares (the loop, the gate, accepting, the drain, outcome logging).

Nothing here imports the concurrency strategies, the handlers or the server: they
build on it.
"""

from .._outcome import CLIENT_GONE_ERRORS, Outcomes, log_outcome
from ._accept import ACCEPT_CAPACITY_ERRNOS, Acceptor
from ._blocking import BlockingRuntime, LoopFactory, RequestJob, SchedulerFactory
from ._contract import (
    AsyncForm,
    Concurrency,
    Deadline,
    Handler,
    Job,
    Layer,
    MessageForm,
    Runtime,
    Scheduler,
    Service,
    cannot_reload,
)
from ._drain import CUT_GRACE, DRAIN_SLICE, DrainTarget, InProcessJobs, drain_requests
from ._evict import Evictable, Evictions
from ._gate import ACCEPT_BACK_OFF, EVICTION_RETRY, ListenerGate
from ._layering import admit, finish, refuse_connection
from ._loop import BATCH, RequestLifecycle, ServeLoop, drain, new_selector, take_request
from ._signals import take_signals_in_a_thread
from ._tally import FLUSH_INTERVAL, Tally

__all__ = [
    "ACCEPT_BACK_OFF",
    "ACCEPT_CAPACITY_ERRNOS",
    "BATCH",
    "CLIENT_GONE_ERRORS",
    "CUT_GRACE",
    "DRAIN_SLICE",
    "EVICTION_RETRY",
    "FLUSH_INTERVAL",
    "Acceptor",
    "AsyncForm",
    "BlockingRuntime",
    "Concurrency",
    "Deadline",
    "DrainTarget",
    "Evictable",
    "Evictions",
    "Handler",
    "InProcessJobs",
    "Job",
    "Layer",
    "ListenerGate",
    "LoopFactory",
    "MessageForm",
    "Outcomes",
    "RequestJob",
    "RequestLifecycle",
    "Runtime",
    "Scheduler",
    "SchedulerFactory",
    "ServeLoop",
    "Service",
    "Tally",
    "admit",
    "cannot_reload",
    "drain",
    "drain_requests",
    "finish",
    "log_outcome",
    "new_selector",
    "refuse_connection",
    "take_request",
    "take_signals_in_a_thread",
]
