"""The command line: ``composerv run package.module:attr``.

Runs a server the way uvicorn or gunicorn run an app: binds the addresses given
as URLs (or the sockets systemd passed in), logs where it listens, serves until
SIGTERM or SIGINT, then (after ``--shutdown-delay``, a lame duck's time for load
balancers to stop sending) stops accepting, lets requests in flight finish
within the drain deadline, and exits. On SIGHUP it re-imports the application,
checks the new handler, and replaces the workers one at a time (``--workers``);
a version that does not import or check is logged and the old one keeps
serving. Under systemd (``$NOTIFY_SOCKET``) it says READY=1 once listening,
RELOADING=1 and READY=1 around a reload, and STOPPING=1 at SIGTERM. Bad
arguments exit with status 2 and one line ``composerv: error: ...`` on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import logging
import os
import signal
import ssl
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TypeGuard

from . import _systemd as systemd
from ._concurrency import (
    Workers,
    asyncio_loop,
    evented,
    forking,
    pooled,
    sync,
    threaded,
    workers,
)
from ._errors import ComposervError, HandlerMismatchError
from ._fit import check_fit
from ._log import logger
from ._metrics import metrics_handler
from ._migrate import add_migrate_command, migrate
from ._runtime import Concurrency, Handler
from ._serve import serve
from ._server import Server
from ._transports import TLS, StreamTransport, Transport, systemd_sockets, tls
from ._url import transport_from_url, url_of

__all__ = ["main"]

CONCURRENCY: dict[str, Callable[[], Concurrency]] = {
    "asyncio": asyncio_loop,
    "evented": evented,
    "forking": forking,
    "pooled": pooled,
    "sync": sync,
    "threaded": threaded,
}
"""The strategies ``--concurrency`` can name."""

DEFAULT_BIND = "tcp://127.0.0.1:8000"
DEFAULT_DRAIN = 30.0
_LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
_STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})
_SIGNALS = _STOP_SIGNALS | {signal.SIGHUP}
# How often the main thread, while it waits for a signal, checks that the servers still run.
_WATCH_INTERVAL = 0.5
# Exit status when the drain deadline passed with requests still running.
EXIT_DRAIN_TIMEOUT = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """Bad arguments: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"composerv: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="composerv", description="Run composerv servers.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser(
        "run",
        help="run a server from package.module:attr",
        description="Serve package.module:attr: a Server, a handler, or a factory of either.",
    )
    run.add_argument("app", metavar="MODULE:ATTR", help="e.g. myapp.server:handler")
    run.add_argument(
        "--bind",
        action="append",
        metavar="URL",
        help=f"an address to listen on, repeatable (default: the sockets systemd "
        f"passed in, else {DEFAULT_BIND}); e.g. tcp://[::1]:8000, unix:///run/app.sock, fd://3, "
        "proxy+tcp://0.0.0.0:8000?trusted=10.0.0.0/8 (behind a load balancer that sends "
        "the PROXY protocol)",
    )
    run.add_argument(
        "--concurrency",
        choices=sorted(CONCURRENCY),
        help="how each process schedules requests (default: threaded)",
    )
    run.add_argument(
        "--workers", type=_positive_int, metavar="N", help="serve with N worker processes"
    )
    run.add_argument(
        "--max-requests",
        type=_positive_int,
        metavar="N",
        help="replace a worker after it served N requests (needs --workers)",
    )
    run.add_argument(
        "--max-requests-jitter",
        type=_whole_number,
        default=0,
        metavar="J",
        help="up to J more requests, drawn per worker (default: 0)",
    )
    run.add_argument(
        "--shutdown-delay",
        type=_seconds,
        default=0.0,
        metavar="SECONDS",
        help="on SIGTERM/SIGINT, go on serving this long before draining, so that a load "
        "balancer or Kubernetes stops sending first (default: 0)",
    )
    run.add_argument(
        "--drain",
        type=_positive_float,
        default=DEFAULT_DRAIN,
        metavar="SECONDS",
        help=f"on SIGTERM/SIGINT, how long requests in flight may run on "
        f"(default: {DEFAULT_DRAIN:g})",
    )
    run.add_argument(
        "--metrics",
        metavar="HOST:PORT",
        help="answer GET /metrics there in the Prometheus text format (needs "
        "composerv[metrics]), e.g. 127.0.0.1:9100 or tcp://[::1]:9100",
    )
    run.add_argument("--ssl-certfile", metavar="PATH", help="serve TLS with this certificate")
    run.add_argument("--ssl-keyfile", metavar="PATH", help="the certificate's private key")
    run.add_argument("--log-level", choices=_LOG_LEVELS, default="info")
    add_migrate_command(commands)
    return parser


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, not {text!r}")
    return int(text)


def _whole_number(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, 0 or more, not {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "migrate":
        return migrate(args)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s",
    )
    try:
        servers = _servers(_load(args.app), args)
    except (UsageError, ComposervError) as exc:
        print(f"composerv: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        metrics = None if args.metrics is None else _metrics_server(args.metrics, servers)
    except (UsageError, ComposervError) as exc:
        for server in servers:
            server.server_close()
        print(f"composerv: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return _run(servers, args, metrics)


def _metrics_server(address: str, servers: Sequence[Server[Any]]) -> Server[Any]:
    """The server of ``--metrics``: `metrics_handler` on `address` (a URL, or HOST:PORT)."""
    transport = transport_from_url(address if "://" in address else f"tcp://{address}")
    try:
        return serve(transport, threaded(), metrics_handler(*servers))
    except OSError as exc:
        raise UsageError(f"cannot serve --metrics on {address}: {exc}") from None


def _load(spec: str) -> object:
    """The object `spec` (``package.module:attr``) names; `UsageError` says what is wrong."""
    module_name, colon, attr_path = spec.partition(":")
    if not colon or not module_name or not attr_path:
        raise UsageError(f"MODULE:ATTR must look like package.module:attr, not {spec!r}")
    # Like `python -m`, find modules in the current directory, also from the console script.
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name + ".").startswith(exc.name + "."):
            raise UsageError(f"cannot import module {module_name!r}: {exc}") from None
        raise
    value: object = module
    for name in attr_path.split("."):
        try:
            value = getattr(value, name)
        except AttributeError:
            raise UsageError(
                f"module {module_name!r} has no attribute {attr_path!r} (looked for {name!r})"
            ) from None
    return value


def _servers(app: object, args: argparse.Namespace) -> list[Server[Any]]:
    """The servers to run for `app`: it is a Server, a handler, or a factory of either."""
    made = _made(app, args.app)
    if isinstance(made, Handler):
        return _serve_handler(made, args)
    options = ("bind", "concurrency", "workers", "max_requests")
    given = [f"--{o.replace('_', '-')}" for o in options if getattr(args, o)]
    if given or args.ssl_certfile:
        raise UsageError(
            f"{args.app} is a Server, which has its own transport and concurrency, so "
            f"{', '.join(given) or '--ssl-certfile'} cannot apply: point at a handler instead"
        )
    return [made]


def _is_app(value: object) -> TypeGuard[Server[Any] | Handler[Any]]:
    """Whether `value` is a Server or a handler (a bare isinstance leaves their
    type arguments unknown)."""
    return isinstance(value, (Server, Handler))


def _made(app: object, spec: str) -> Server[Any] | Handler[Any]:
    """`app` itself if it is a Server or a handler, else what the factory `app` makes."""
    if _is_app(app):
        return app
    if callable(app) and not isinstance(app, type) and _takes_no_arguments(app):
        made = app()
        if _is_app(made):
            return made
        raise UsageError(f"{spec}() returned {made!r}, not a Server or a handler")
    raise UsageError(
        f"{spec} is {type(app).__name__} {app!r}; it must be a Server, a handler such "
        "as stream_handler(fn), or a function of no arguments that returns one"
    )


def _reimported_handler(spec: str) -> Handler[Any]:
    """The handler `spec` names, from its package imported anew (its modules are
    dropped first, so their new code runs)."""
    package = spec.partition(":")[0].split(".")[0]
    for name in [n for n in sys.modules if n == package or n.startswith(package + ".")]:
        del sys.modules[name]
    importlib.invalidate_caches()
    made = _made(_load(spec), spec)
    if not isinstance(made, Handler):
        raise UsageError(
            f"{spec} is a Server, which binds its own socket: only a handler can be "
            "reloaded into running workers"
        )
    return made


def _takes_no_arguments(fn: Callable[..., object]) -> bool:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return False
    try:
        signature.bind()
    except TypeError:
        return False
    return True


def _serve_handler(handler: Handler[Any], args: argparse.Namespace) -> list[Server[Any]]:
    transports: list[Transport[Any]]
    if args.bind:
        transports = [transport_from_url(url) for url in args.bind]
    else:
        transports = list(systemd_sockets()) or [transport_from_url(DEFAULT_BIND)]
    if args.ssl_certfile:
        transports = [_with_tls(t, args.ssl_certfile, args.ssl_keyfile) for t in transports]
    elif args.ssl_keyfile:
        raise UsageError("--ssl-keyfile needs --ssl-certfile")
    # Chosen at run time, so no overload of serve() can be picked statically;
    # serve() checks the pairing with the app's handler and says what to change.
    concurrency: Any = CONCURRENCY[args.concurrency or "threaded"]()
    if args.workers:
        concurrency = workers(
            args.workers,
            concurrency,
            max_requests=args.max_requests,
            max_requests_jitter=args.max_requests_jitter,
        )
    elif args.max_requests:
        raise UsageError("--max-requests replaces worker processes: it needs --workers")
    servers: list[Server[Any]] = []
    try:
        for transport in transports:
            try:
                servers.append(serve(transport, concurrency, handler))
            except OSError as exc:
                raise UsageError(f"cannot listen on {transport!r}: {exc}") from None
            except HandlerMismatchError as exc:
                raise UsageError(str(exc)) from None
    except BaseException:
        for server in servers:
            server.server_close()
        raise
    return servers


def _with_tls(transport: Transport[Any], certfile: str, keyfile: str | None) -> Transport[Any]:
    if not isinstance(transport, StreamTransport):
        raise UsageError(f"TLS needs a stream transport (tcp://, unix://), not {transport!r}")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(certfile, keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"cannot load the TLS certificate {certfile!r}: {exc}") from None
    return tls(transport, context)


def _run(servers: list[Server[Any]], args: argparse.Namespace, metrics: Server[Any] | None) -> int:
    # The signals wait, blocked, for the main thread to take them with sigwait: no
    # handler runs in the middle of other code, and threads started from here on
    # (serve_forever, requests, workers) inherit the mask, so only this thread gets them.
    signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    threads: list[threading.Thread] = []
    for server in servers:
        _log_listening(server)
        thread = threading.Thread(
            target=_serve_forever, args=(server,), name=f"composerv-serve-{url_of(server.socket)}"
        )
        thread.start()
        threads.append(thread)
    metrics_thread = None
    if metrics is not None:
        where = url_of(metrics.socket).replace("tcp://", "http://", 1)
        logger.info("serving metrics on %s/metrics", where)
        metrics_thread = threading.Thread(
            target=_serve_forever, args=(metrics,), name="composerv-metrics"
        )
        metrics_thread.start()
    systemd.ready()
    received = _wait_for_stop(servers, threads, args.app)
    if received is not None:
        logger.info("received %s: stopping", signal.Signals(received).name)
        systemd.stopping()
        _lame_duck(args.shutdown_delay)
    else:
        logger.error("a server stopped on its own; stopping the others")
    drained = stop_gracefully(servers, threads, args.drain)
    if metrics is not None and metrics_thread is not None:
        metrics.shutdown()
        metrics_thread.join()
        metrics.server_close()
    if not drained:
        # Request threads still run and would hold the interpreter open at exit.
        logging.shutdown()
        os._exit(EXIT_DRAIN_TIMEOUT)
    return 0 if received is not None else 1


def _wait_for_stop(
    servers: Sequence[Server[Any]], threads: Sequence[threading.Thread], spec: str
) -> int | None:
    """Serve, reloading at each SIGHUP, until a stop signal (returned) or a server
    stops on its own (None)."""
    while all(t.is_alive() for t in threads):  # as long as the servers run
        received = signal.sigtimedwait(_SIGNALS, _WATCH_INTERVAL)
        if received is None:
            continue
        if received.si_signo != signal.SIGHUP:
            return received.si_signo
        _reload(servers, spec)
    return None


def _reload(servers: Sequence[Server[Any]], spec: str) -> None:
    """Re-import `spec`, check its handler against every server, then reload each."""
    systemd.reloading()
    logger.info("received SIGHUP: reloading %s", spec)
    started = time.monotonic()
    try:
        handler = _reimported_handler(spec)
        for server in servers:  # every one, before a worker is touched
            check_fit(server.transport, server.concurrency, handler)
        for server in servers:
            server.reload(handler)
    except Exception:  # the new version's own code may raise anything: it is logged
        logger.exception("could not reload %s; the version running goes on serving", spec)
    else:
        logger.info("reloaded %s in %.2fs", spec, time.monotonic() - started)
    systemd.ready()


def _lame_duck(delay: float) -> None:
    """Go on serving for `delay` seconds; a second stop signal ends it early."""
    if not delay:
        return
    logger.info("serving for %gs more before draining (--shutdown-delay)", delay)
    deadline = time.monotonic() + delay
    while (remaining := deadline - time.monotonic()) > 0:  # bounded by the deadline
        received = signal.sigtimedwait(_SIGNALS, remaining)
        if received is not None and received.si_signo != signal.SIGHUP:
            logger.info("received %s: draining now", signal.Signals(received.si_signo).name)
            return


def _serve_forever(server: Server[Any]) -> None:
    try:
        server.serve_forever()
    except Exception:
        logger.exception("server on %s failed", url_of(server.socket))


def _log_listening(server: Server[Any]) -> None:
    notes: list[str] = []
    if server.transport.proxy_protocol is not None:
        trusted = server.transport.proxy_protocol.trusted
        notes.append(f"PROXY protocol from {', '.join(map(str, trusted)) or 'unix peers'}")
    if isinstance(server.transport, TLS):
        notes.append("TLS")
    # Through a variable: pyright reports the narrowed attribute itself, of type
    # Workers[Unknown], as partially unknown.
    workers: Concurrency = server.concurrency
    if isinstance(workers, Workers):
        notes.append(f"{workers.count} workers")
    logger.info(
        "listening on %s%s", url_of(server.socket), f" ({', '.join(notes)})" if notes else ""
    )


def stop_gracefully(
    servers: Sequence[Server[Any]], threads: Sequence[threading.Thread], drain: float
) -> bool:
    """Stop accepting, let requests in flight finish for up to `drain` seconds, close.

    Returns False if requests were still running at the deadline.
    """

    # shutdown() stops each accept loop (under sync() it waits for the request
    # being served; workers get SIGTERM and `drain` seconds), server_close() closes
    # the listening socket and waits for requests in flight: a thread bounds it all.
    def stop_all() -> None:
        for server in servers:
            server.shutdown()
        for thread in threads:
            thread.join()
        logger.info("no longer accepting; letting requests in flight finish")
        for server in servers:
            server.server_close()

    logger.info("stopping; requests in flight get up to %gs", drain)
    stopper = threading.Thread(target=stop_all, name="composerv-drain")
    stopper.start()
    stopper.join(drain)
    if stopper.is_alive():
        logger.error("requests still running after %gs; exiting without them", drain)
        return False
    logger.info("stopped")
    return True
