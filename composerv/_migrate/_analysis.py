"""Finding a program's classic servers and handlers, and what they rely on, in its syntax tree."""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from typing import Literal, TypeGuard, TypeVar

import attrs

from .._handlers._classic import ClassicServer
from ._classic import CLASSES, DATAGRAM_TRANSPORTS, OPTIONS, ClassicClass, Role, advice_for_hook
from ._names import Names, nodes

__all__ = ["Analysis", "Assignment", "Mention", "ProgramClass", "ServerMade", "analyse"]

_Named = TypeVar("_Named", bound="Mention | Assignment")
_V = TypeVar("_V")

# The attributes of a classic handler whose use says how it talks to its client.
_HANDLER_ATTRIBUTES = frozenset(
    {"rfile", "wfile", "request", "connection", "client_address", "server", "packet", "socket"}
)
# Method calls on them that a rewrite translates one for one.
_KNOWN_CALLS = frozenset(
    {"rfile.readline", "wfile.write", "request.recv", "request.sendall", "request.send"}
)
_ROLES: tuple[Role, ...] = ("server", "mixin", "handler")  # a server with a mixin is a server
# address_family = AF_UNIX makes a TCP or UDP server class a unix one.
_UNIX = {"tcp": "unix_stream", "udp": "unix_datagram"}
_SETTINGS = frozenset(
    {option.setting for option in OPTIONS}
    | {"timeout", "address_family", "socket_type", "rbufsize", "wbufsize"}
)


@attrs.frozen
class Assignment:
    """A classic setting the program gives a value: ``daemon_threads = True``."""

    owner: str
    """The class (or the variable holding the server) it is set on."""
    name: str
    value: str
    """The value's source text."""
    line: int


@attrs.frozen
class Mention:
    """A hook the program overrides, or server state a handler reads, at a line."""

    owner: str
    name: str
    line: int


@attrs.frozen
class ProgramClass:
    """A class of the program built on classic server, mixin or handler classes."""

    name: str
    line: int
    bases: str
    """The bases as written."""
    role: Role
    transport: str | None
    concurrency: str | None
    handler_kind: Literal["stream", "datagram"] | None
    on_stdlib: bool
    """Derived from http.server or xmlrpc.server classes (so from the stdlib socketserver)."""
    mixes_into_stdlib: bool
    """A socketserver mixin on top of such a class: ``class S(ThreadingMixIn, HTTPServer)``."""
    settings: tuple[Assignment, ...]
    hooks: tuple[Mention, ...]
    uses: frozenset[str]
    """Handler idioms: ``rfile``, ``request.recv``, ``request[1]``, ``client_address``..."""
    server_state: tuple[Mention, ...]
    """``self.server.X`` reads of what a core server does not have."""


@attrs.frozen
class ServerMade:
    """A classic server the program constructs: ``TCPServer(address, Handler)``."""

    line: int
    call: str
    server: ProgramClass | ClassicClass
    address: str | None
    handler: str | None
    """The handler class as written."""
    options: tuple[tuple[str, str], ...]
    """Constructor arguments that become transport options: ``bind_and_activate=False``."""
    settings: tuple[Assignment, ...]
    """Settings assigned to the instance: ``server.daemon_threads = True``."""


@attrs.frozen
class Analysis:
    """What the report says about one program."""

    classes: tuple[ProgramClass, ...]
    servers: tuple[ServerMade, ...]
    missing: tuple[tuple[int, str], ...]
    """(line, ``socketserver.NAME``) for each name the program uses that compat lacks."""

    def program_class(self, name: str | None) -> ProgramClass | None:
        """The program's class called `name`, if it defines one."""
        return next((c for c in reversed(self.classes) if c.name == name), None)


def analyse(tree: ast.Module, text: str) -> Analysis:
    """Find the classic servers and handlers of the program `text`, whose syntax tree is `tree`."""
    names = Names(tree)
    show = _Shower(text)
    latest: dict[str, ProgramClass] = {}  # what each class name means from there on
    found: list[ProgramClass] = []
    for node in sorted(nodes(tree, ast.ClassDef), key=lambda n: n.lineno):
        program_class = _program_class(node, names, latest, show)
        if program_class is not None:
            latest[program_class.name] = program_class
            found.append(program_class)
    servers = _servers(tree, names, latest, show)
    transports = {made.handler: made.server.transport for made in servers}
    found = [_with_kind(c, transports.get(c.name)) for c in found]
    return Analysis(tuple(found), servers, tuple(names.missing(tree)))


def _with_kind(found: ProgramClass, transport: str | None) -> ProgramClass:
    """A BaseRequestHandler subclass serves what its server's transport delivers."""
    if found.role != "handler" or found.handler_kind is not None:
        return found
    kind: Literal["stream", "datagram"] | None
    if transport is not None:
        kind = "datagram" if transport in DATAGRAM_TRANSPORTS else "stream"
    else:
        kind = _kind_from_uses(found.uses)
    return attrs.evolve(found, handler_kind=kind)


class _Shower:
    """An expression as the program wrote it (canonical if it spans lines)."""

    def __init__(self, text: str) -> None:
        self._text = text

    def __call__(self, node: ast.AST) -> str:
        segment = ast.get_source_segment(self._text, node)
        return segment if segment and "\n" not in segment else ast.unparse(node)


def _kind_from_uses(uses: frozenset[str]) -> Literal["stream", "datagram"] | None:
    """What a BaseRequestHandler subclass serves, judged by how it uses self.request."""
    if {"request[0]", "request[1]", "packet", "socket"} & uses:
        return "datagram"
    if {"request.recv", "request.sendall", "request.send", "connection"} & uses:
        return "stream"
    return None


def _program_class(
    node: ast.ClassDef, names: Names, known: dict[str, ProgramClass], show: _Shower
) -> ProgramClass | None:
    bases: list[ClassicClass | ProgramClass] = []
    for base in node.bases:
        resolved = names.resolve(base)
        if resolved in CLASSES:
            bases.append(CLASSES[resolved])
        elif isinstance(base, ast.Name) and base.id in known:
            bases.append(known[base.id])
    if not bases:
        return None
    roles: set[Role] = {base.role for base in bases}
    role: Role = next(r for r in _ROLES if r in roles)
    inherited = [base for base in bases if isinstance(base, ProgramClass)]
    methods = [n for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    hooks = [Mention(node.name, m.name, m.lineno) for m in methods if advice_for_hook(role, m.name)]
    settings = [*_class_settings(node, show), *_instance_settings(node.name, methods, show)]
    uses, state = _handler_uses(node.name, methods) if role == "handler" else (set[str](), [])
    transport = _first(base.transport for base in bases)
    # A typed list: pyright widens the Literal of a generator's items to str.
    kinds: list[Literal["stream", "datagram"] | None] = [b.handler_kind for b in bases]
    if any(s.name == "address_family" and s.value.endswith("AF_UNIX") for s in settings):
        transport = _UNIX.get(transport or "", transport)
    return ProgramClass(
        name=node.name,
        line=node.lineno,
        bases=", ".join(show(base) for base in node.bases),
        role=role,
        transport=transport,
        concurrency=_first(base.concurrency for base in bases),
        handler_kind=_first(kinds),
        on_stdlib=any(base.on_stdlib for base in bases),
        mixes_into_stdlib=any(base.on_stdlib for base in bases) and "mixin" in roles,
        settings=_merged(settings, (s for base in inherited for s in base.settings)),
        hooks=_merged(hooks, (h for base in inherited for h in base.hooks)),
        uses=frozenset(uses).union(*(base.uses for base in inherited)),
        server_state=(*state, *(s for base in inherited for s in base.server_state)),
    )


def _class_settings(node: ast.ClassDef, show: _Shower) -> Iterator[Assignment]:
    for statement in node.body:
        if isinstance(statement, ast.Assign):
            targets, value = statement.targets, statement.value
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            targets, value = [statement.target], statement.value
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Name) and target.id in _SETTINGS:
                yield Assignment(node.name, target.id, show(value), statement.lineno)


def _instance_settings(
    owner: str, methods: list[ast.FunctionDef | ast.AsyncFunctionDef], show: _Shower
) -> Iterator[Assignment]:
    """``self.daemon_threads = True`` in a method."""
    for method in methods:
        this = method.args.args[0].arg if method.args.args else None
        for node in nodes(method, ast.Assign):
            for target in node.targets:
                if _is_attribute_of(target, this) and target.attr in _SETTINGS:
                    yield Assignment(owner, target.attr, show(node.value), node.lineno)


def _handler_uses(
    owner: str, methods: list[ast.FunctionDef | ast.AsyncFunctionDef]
) -> tuple[set[str], list[Mention]]:
    core_server = {field.name for field in attrs.fields(ClassicServer)}
    uses: set[str] = set()
    state: list[Mention] = []
    for method in methods:
        this = method.args.args[0].arg if method.args.args else None
        parents = {
            child: parent for parent in ast.walk(method) for child in ast.iter_child_nodes(parent)
        }
        for node in nodes(method, ast.Attribute):
            if not _is_attribute_of(node, this) or node.attr not in _HANDLER_ATTRIBUTES:
                continue
            parent = parents.get(node)
            if isinstance(parent, ast.Attribute) and node.attr == "server":
                if parent.attr not in core_server:
                    state.append(Mention(owner, parent.attr, parent.lineno))
            elif isinstance(parent, ast.Attribute) and f"{node.attr}.{parent.attr}" in _KNOWN_CALLS:
                uses.add(f"{node.attr}.{parent.attr}")
            elif (
                isinstance(parent, ast.Subscript)
                and node.attr == "request"
                and isinstance(parent.slice, ast.Constant)
            ):
                uses.add(f"{node.attr}[{parent.slice.value!r}]")
            else:
                uses.add(node.attr)
    return uses, state


def _servers(
    tree: ast.Module, names: Names, classes: dict[str, ProgramClass], show: _Shower
) -> tuple[ServerMade, ...]:
    bound: dict[str, list[int]] = {}  # variable -> indexes of the servers assigned to it
    made: list[tuple[ast.Call, ClassicClass | ProgramClass]] = []
    for node in sorted(nodes(tree, ast.Call), key=lambda n: (n.lineno, n.col_offset)):
        resolved = names.resolve(node.func)
        server: ClassicClass | ProgramClass | None = CLASSES.get(resolved) if resolved else None
        if isinstance(node.func, ast.Name) and node.func.id in classes:
            server = classes[node.func.id]
        if server is not None and server.role == "server":
            made.append((node, server))
    for variable, value in _bindings(tree):
        for index, (call, _) in enumerate(made):
            if value is call:
                bound.setdefault(variable, []).append(index)
    instance_settings: dict[int, list[Assignment]] = {}
    for assign in nodes(tree, ast.Assign):
        for target in assign.targets:
            if (
                isinstance(target, ast.Attribute)
                and isinstance(target.value, ast.Name)
                and target.attr in _SETTINGS
            ):
                owner = target.value.id
                for index in bound.get(owner, []):
                    assignment = Assignment(owner, target.attr, show(assign.value), assign.lineno)
                    instance_settings.setdefault(index, []).append(assignment)
    return tuple(
        ServerMade(
            line=call.lineno,
            call=show(call),
            server=server,
            address=_argument(call, 0, "server_address", show),
            handler=_argument(call, 1, "RequestHandlerClass", show),
            options=_constructor_options(call, show),
            settings=tuple(instance_settings.get(index, [])),
        )
        for index, (call, server) in enumerate(made)
    )


def _bindings(tree: ast.Module) -> Iterator[tuple[str, ast.expr]]:
    """``name = value`` and ``with value as name``, anywhere."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    yield target.id, node.value
        elif isinstance(node, ast.withitem) and isinstance(node.optional_vars, ast.Name):
            yield node.optional_vars.id, node.context_expr


def _argument(call: ast.Call, position: int, keyword: str, show: _Shower) -> str | None:
    if len(call.args) > position and not isinstance(call.args[position], ast.Starred):
        return show(call.args[position])
    value = next((k.value for k in call.keywords if k.arg == keyword), None)
    return None if value is None else show(value)


def _constructor_options(call: ast.Call, show: _Shower) -> tuple[tuple[str, str], ...]:
    value = _argument(call, 2, "bind_and_activate", show)
    return () if value is None or value == "True" else (("bind_and_activate", value),)


def _merged(own: list[_Named], inherited: Iterable[_Named]) -> tuple[_Named, ...]:
    """`own`, then what a base class had that `own` does not redefine."""
    names = {item.name for item in own}
    return (*own, *(item for item in inherited if item.name not in names))


def _first(values: Iterable[_V | None]) -> _V | None:
    return next((value for value in values if value is not None), None)


def _is_attribute_of(node: ast.AST, name: str | None) -> TypeGuard[ast.Attribute]:
    return (
        name is not None
        and isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == name
    )
