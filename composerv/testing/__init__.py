"""Helpers for testing servers built with composerv, and a pytest plugin.

Everything here waits with a deadline and fails with a message naming what it
waited for, so a broken server fails its test instead of hanging the run:

- `serving`: a server running in a thread for a with-block, shut down, closed and
  checked for leaks on exit.
- `no_leaks` and `Resources`: fail when a block leaves descriptors, threads or
  child processes behind.
- `run_messages` and `run_bytes`: a message handler driven with no socket, as
  an event loop drives it.
- `connect_handler`: a blocking stream handler serving one socketpair connection.
- `free_port`, `tls_contexts`, `tls_certificate`, `wait_until`.

Installing composerv also installs a pytest plugin with the fixtures
``composerv_no_leaks``, ``composerv_serving``, ``composerv_tls`` and
``free_tcp_port``. docs/testing.md is the guide.
"""

from ._connections import connect_handler
from ._leaks import Resources, no_leaks
from ._messages import run_bytes, run_messages
from ._ports import free_port
from ._serving import Servable, ServingFactory, serving
from ._tls import TLSCertificate, TLSContexts, tls_certificate, tls_contexts
from ._wait import wait_until

__all__ = [
    "Resources",
    "Servable",
    "ServingFactory",
    "TLSCertificate",
    "TLSContexts",
    "connect_handler",
    "free_port",
    "no_leaks",
    "run_bytes",
    "run_messages",
    "serving",
    "tls_certificate",
    "tls_contexts",
    "wait_until",
]
