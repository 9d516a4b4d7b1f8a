"""The interfaces for extending composerv: a new transport, concurrency or handler.

Like ``trio.abc``: what servers are built with lives in `composerv`; what a new
building block implements lives here. docs/architecture.md shows how each is
used, with a worked example of a transport and a concurrency.

- A transport (`Transport`, or `StreamTransport` / `DatagramTransport`) makes
  the listening socket and takes requests off it.
- A concurrency (`Concurrency`; `BlockingConcurrency` with a `Scheduler`, or an
  `EventLoopConcurrency`) builds the `Runtime` that serves a `Service`.
- A handler (`Handler`) serves one request given its `RequestContext`, and may
  offer an event loop a `MessageForm` or an asyncio loop an `AsyncForm`.
- A framing (`StreamFraming` with its `Decoder`) cuts a stream into messages.
"""

from ._concurrency import BlockingConcurrency, EventLoopConcurrency
from ._context import RequestContext
from ._framing import Decoder, Framing, MessageFn, StreamFraming
from ._handlers import MessageHandler
from ._runtime import (
    AsyncForm,
    Concurrency,
    Deadline,
    Handler,
    Job,
    Layer,
    MessageForm,
    RequestLifecycle,
    Runtime,
    Scheduler,
    Service,
)
from ._transports import DatagramTransport, StreamTransport, Transport

__all__ = [
    "AsyncForm",
    "BlockingConcurrency",
    "Concurrency",
    "DatagramTransport",
    "Deadline",
    "Decoder",
    "EventLoopConcurrency",
    "Framing",
    "Handler",
    "Job",
    "Layer",
    "MessageFn",
    "MessageForm",
    "MessageHandler",
    "RequestContext",
    "RequestLifecycle",
    "Runtime",
    "Scheduler",
    "Service",
    "StreamFraming",
    "StreamTransport",
    "Transport",
]
