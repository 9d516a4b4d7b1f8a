"""``composerv migrate --report``: each classic server and handler, and its core equivalent.

For every server the program constructs, the report gives the same service on
composerv's core (``serve(transport, concurrency, request_handler(H))``), then
what a rewrite of the handler as a function (`stream_handler`,
`datagram_handler`) or as messages (`message_handler`) would look like, and which
stdlib behaviours the program relies on: the hooks it overrides and the settings
it gives (``timeout``, ``daemon_threads``...), each with what becomes of it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

import attrs

from .._handlers._classic import ClassicServer
from .._limits import limits
from ._analysis import Analysis, Assignment, ProgramClass, ServerMade, analyse
from ._classic import (
    DATAGRAM_TRANSPORTS,
    OPTIONS,
    ClassicClass,
    Option,
    advice_for_hook,
    advice_for_setting,
)
from ._imports import find
from ._source import decode, parse, tokens

__all__ = ["report"]

_STREAM_REWRITES = {
    "rfile.readline": ("self.rfile.readline()", "conn.readline()"),
    "rfile": ("self.rfile", "conn.rfile"),
    "wfile.write": ("self.wfile.write(data)", "conn.send_all(data)"),
    "wfile": ("self.wfile", "conn.wfile"),
    "request.recv": ("self.request.recv(n)", "conn.recv(n)"),
    "request.sendall": ("self.request.sendall(data)", "conn.send_all(data)"),
    "request.send": ("self.request.send(data)", "conn.send_all(data), which sends all of it"),
    "request": ("self.request", "conn.socket"),
    "connection": ("self.connection", "conn.socket"),
    "client_address": ("self.client_address", "conn.peer"),
}
"""Handler idiom -> (as written in a classic stream handler, on a `Connection`)."""
_DATAGRAM_REWRITES = {
    "request[0]": ("self.request[0]", "dgram.data"),
    "packet": ("self.packet", "dgram.data"),
    "rfile": ("self.rfile", "io.BytesIO(dgram.data)"),
    "request[1]": ("self.request[1].sendto(data, self.client_address)", "dgram.reply(data)"),
    "socket": ("self.socket.sendto(data, self.client_address)", "dgram.reply(data)"),
    "wfile": ("self.wfile.write(data)", "dgram.reply(data), one datagram per reply"),
    "wfile.write": ("self.wfile.write(data)", "dgram.reply(data), one datagram per reply"),
    "client_address": ("self.client_address", "dgram.peer"),
}
"""Handler idiom -> (as written in a classic datagram handler, on a `Datagram`)."""
_ON_STDLIB = (
    "http.server and xmlrpc.server derive their servers from the stdlib socketserver, "
    "whatever the program imports"
)
_ALL_ON_COMPAT = (
    "to run it all on compat, make compat.socketserver the socketserver module "
    '(sys.modules["socketserver"] = compat.socketserver) before http.server or xmlrpc.server '
    "is imported"
)


def report(name: str, data: bytes) -> list[str]:
    """The report on the source file `name` holding `data`; empty if it has nothing classic.

    Raises `SourceError` if the file cannot be decoded or tokenized.
    """
    source = decode(data)
    rewrites, _ = find(tokens(source.text))
    tree = parse(source.text)
    if isinstance(tree, SyntaxError):
        if not rewrites:
            return []
        return [
            name,
            f"  not Python 3 (line {tree.lineno}: {tree.msg}): convert it from Python 2 "
            "(e.g. with 2to3), then run --report on it again",
        ]
    analysis = analyse(tree, source.text)
    lines = [*_classes(analysis), *_servers(analysis), *_limits(analysis), *_relied_on(analysis)]
    if rewrites:
        count = (
            "1 import of the stdlib module remains"
            if len(rewrites) == 1
            else (f"{len(rewrites)} imports of the stdlib module remain")
        )
        lines.append(f"  {count}: composerv migrate {name} rewrites them")
    return [name, *lines] if lines else []


def _classes(analysis: Analysis) -> Iterator[str]:
    for found in analysis.classes:
        head = f"  line {found.line}: {found.role} class {found.name}({found.bases})"
        if found.role == "handler":
            uses = ", ".join(_idioms(found))
            yield f"{head}: a {found.handler_kind or 'stream or datagram'} handler" + (
                f" using {uses}" if uses else ""
            )
        elif found.on_stdlib:
            yield f"{head}: on the stdlib socketserver, through http.server or xmlrpc.server"
        elif found.role == "mixin":
            yield f"{head}: {found.concurrency}()"
        else:
            yield f"{head}: {found.concurrency}() on {found.transport or 'a transport of its own'}"


def _idioms(handler: ProgramClass) -> list[str]:
    """What the handler uses, as written: ``self.rfile.readline``, ``self.request``..."""
    rewrites = _DATAGRAM_REWRITES if handler.handler_kind == "datagram" else _STREAM_REWRITES
    ordered = [key for key in rewrites if key in handler.uses]
    ordered += sorted(handler.uses - set(ordered))
    written = [rewrites[key][0] if key in rewrites else f"self.{key}" for key in ordered]
    return list(dict.fromkeys(text.split("(")[0] for text in written))


def _servers(analysis: Analysis) -> Iterator[str]:
    for made in analysis.servers:
        yield f"  line {made.line}: {made.call}"
        if made.server.on_stdlib:
            yield f"    no core rewrite: it keeps its stdlib class; {_ON_STDLIB}; {_ALL_ON_COMPAT}"
            continue
        if made.server.transport is None:
            yield "    stays on compat: its transport is its own (a BaseServer subclass)"
            continue
        yield from _suggestions(made, analysis.program_class(made.handler))


def _suggestions(made: ServerMade, handler: ProgramClass | None) -> Iterator[str]:
    transport = made.server.transport
    assert transport is not None
    concurrency = made.server.concurrency or "sync"
    datagram = transport in DATAGRAM_TRANSPORTS or (
        handler is not None and handler.handler_kind == "datagram"
    )
    settings = _settings_of(made, handler)
    address = made.address or "ADDRESS"
    where = f"{transport}({', '.join([address, *_keywords(transport, settings, made.options)])})"
    how = f"{concurrency}({', '.join(_keywords(concurrency, settings))})"
    limits = _keywords("limits", settings)
    tail = f", limits=limits({', '.join(limits)})" if limits else ""
    handler_name = made.handler or "Handler"
    kind = ', kind="datagram"' if datagram else ""
    yield f"    on the core: serve({where}, {how}, request_handler({handler_name}{kind}){tail})"
    if datagram:
        yield (
            f"    as a datagram_handler: serve({where}, {how}, datagram_handler(handle){tail}), "
            f"where handle(dgram: Datagram) is the body of {handler_name}.handle"
            + (", with:" if handler and handler.uses & _DATAGRAM_REWRITES.keys() else "")
        )
        yield from _rewrites(handler, _DATAGRAM_REWRITES)
        yield (
            f"    as a message_handler: serve({where}, evented(), message_handler(reply, "
            f"datagrams()){tail}), where reply(data: bytes) -> bytes | None answers one "
            "datagram, if it sends at most one reply per datagram"
        )
        return
    yield (
        f"    as a stream_handler: serve({where}, {how}, stream_handler(handle){tail}), where "
        f"handle(conn: Connection) is the body of {handler_name}.handle"
        + (", with:" if handler and handler.uses & _STREAM_REWRITES.keys() else "")
    )
    yield from _rewrites(handler, _STREAM_REWRITES)
    reads_lines = handler is not None and bool({"rfile", "rfile.readline"} & handler.uses)
    yield (
        f"    as a message_handler: serve({where}, evented(), message_handler(reply){tail}), "
        "where reply(line: bytes) -> bytes | None answers one line (length_prefixed() framing "
        "for length-prefixed messages): "
        + (
            "it reads lines, so this fits if each reply depends only on its line"
            if reads_lines
            else "fits if its protocol is one reply per line or per message"
        )
    )


def _limits(analysis: Analysis) -> Iterator[str]:
    if any(
        made.server.transport in ("tcp", "unix_stream") and not made.server.on_stdlib
        for made in analysis.servers
    ):
        defaults = limits()
        yield (
            f"  note: serve() applies limits() by default: a connection idle for "
            f"{defaults.idle_timeout:g}s is closed, a read must finish within "
            f"{defaults.read_timeout:g}s and a write within {defaults.write_timeout:g}s, and "
            f"at most {defaults.max_connections} requests run at once; socketserver has no "
            "such limits: pass limits=limits(...) to choose them"
        )


def _rewrites(handler: ProgramClass | None, table: dict[str, tuple[str, str]]) -> Iterator[str]:
    for key, (before, after) in table.items():
        if handler is not None and key in handler.uses:
            yield f"      {before} -> {after}"


def _settings_of(made: ServerMade, handler: ProgramClass | None) -> dict[Option, Assignment]:
    """The settings that a core factory keyword carries over, latest assignment winning."""
    found: dict[Option, Assignment] = {}
    server_settings = made.server.settings if isinstance(made.server, ProgramClass) else ()
    for role, settings in (
        ("server", server_settings),
        ("handler", handler.settings if handler else ()),
        ("server", made.settings),
    ):
        for assignment in settings:
            for option in OPTIONS:
                if option.role == role and option.setting == assignment.name:
                    found[option] = assignment
    return found


def _keywords(
    factory: str,
    settings: dict[Option, Assignment],
    options: tuple[tuple[str, str], ...] = (),
) -> list[str]:
    keywords = [f"{keyword}={value}" for keyword, value in options]
    for option, assignment in settings.items():
        if factory in option.factories and not _is_literally(
            assignment.value, option.default(factory)
        ):
            keywords.append(f"{option.keyword}={assignment.value}")
    return keywords


def _is_literally(source: str, value: object) -> bool:
    try:
        return bool(ast.literal_eval(source) == value)
    except (ValueError, SyntaxError):
        return False


def _relied_on(analysis: Analysis) -> Iterator[str]:
    lines = [line for found in analysis.classes for line in _relied_on_by(found)]
    for made in analysis.servers:
        for setting in made.settings:
            lines.append((setting.line, _setting_line("server", setting, made.server)))
    for line, name in analysis.missing:
        lines.append((line, f"uses {name}, which compat.socketserver does not have"))
    if lines:
        yield "  relies on:"
        for line, text in sorted(lines):
            yield f"    line {line}: {text}"


def _relied_on_by(found: ProgramClass) -> Iterator[tuple[int, str]]:
    """What `found` itself relies on (what it inherits is reported on its base)."""
    role = "handler" if found.role == "handler" else "server"
    for setting in found.settings:
        if setting.owner == found.name:
            yield setting.line, _setting_line(role, setting, found)
    for hook in found.hooks:
        if hook.owner == found.name:
            advice = advice_for_hook(found.role, hook.name)
            yield hook.line, f"{found.name} overrides {hook.name}(): {advice}"
    for read in found.server_state:
        if read.owner == found.name:
            yield read.line, _state_line(read.owner, read.name)
    if found.mixes_into_stdlib:
        yield found.line, _mixin_line(found)


def _setting_line(role: str, setting: Assignment, owner: ProgramClass | ClassicClass) -> str:
    head = f"{setting.owner}.{setting.name} = {setting.value}"
    if setting.name == "address_family" and setting.value.endswith("AF_UNIX"):
        return f"{head}: a unix socket, which {owner.transport}(path) binds"
    for option in OPTIONS:
        if option.role == role and option.setting == setting.name:
            used = (owner.transport, owner.concurrency, "limits")
            factory = next((f for f in option.factories if f in used), option.factories[0])
            if _is_literally(setting.value, option.default(factory)):
                return f"{head}: what {factory}() does by default"
            return f"{head}: {factory}({option.keyword}={setting.value})"
    advice = advice_for_setting("handler" if role == "handler" else "server", setting.name)
    return f"{head}: {advice or 'no core equivalent'}"


def _state_line(owner: str, attribute: str) -> str:
    fields = ", ".join(field.name for field in attrs.fields(ClassicServer))
    return (
        f"{owner} reads self.server.{attribute}: under request_handler() self.server has only "
        f"{fields}; give the value to a handler function (a closure), or stay on compat"
    )


def _mixin_line(found: ProgramClass) -> str:
    return (
        f"{found.name} mixes a socketserver mixin into a stdlib server: compat's "
        "ThreadingMixIn and ForkingMixIn work on such classes (compat/_mixins.py), so once "
        "migrated its requests run on composerv's threads (or child processes) while binding "
        "and the serve loop stay the stdlib socketserver's"
    )
