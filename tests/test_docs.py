"""The documentation holds: the API reference names every public name, every public
class and function has a docstring, and every ```python block of the docs runs.

The reference (docs/reference/*.md) is written by hand, one page per topic, with
mkdocstrings directives (``::: composerv.tcp``, or ``::: composerv.abc`` for a whole
module); the site renders each name's docstring there (`mkdocs build --strict` in
.ci/run checks the directives resolve). The public names of a module are its
``__all__``, so a module added to `PUBLIC_MODULES` or a name added to an ``__all__``
fails here until a page shows it.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import ipaddress
import re
import socket
import threading
import types
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

import composerv

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
REFERENCE = DOCS / "reference"

# The modules whose names are the public API; those not written yet are skipped
# until they exist.
PUBLIC_MODULES = (
    "composerv",
    "composerv.abc",
    "composerv.types",
    "composerv.layers",
    "composerv.sessions",
    "composerv.testing",
)


def public_modules() -> list[types.ModuleType]:
    """The modules of `PUBLIC_MODULES` that exist."""
    return [
        importlib.import_module(name)
        for name in PUBLIC_MODULES
        if importlib.util.find_spec(name) is not None
    ]


def public_names() -> Iterator[tuple[str, str, Any]]:
    """(module, name, value) for every name of every public module's ``__all__``."""
    for module in public_modules():
        for name in module.__all__:
            yield module.__name__, name, getattr(module, name)


# --- The reference covers every public name ----------------------------------------

DIRECTIVE = re.compile(r"^::: ([\w.]+)[ \t]*$", re.MULTILINE)


def directives() -> dict[str, list[Path]]:
    """Each identifier a reference page has a ``:::`` directive for, and the pages."""
    found: dict[str, list[Path]] = {}
    for page in sorted(REFERENCE.glob("*.md")):
        for identifier in DIRECTIVE.findall(page.read_text()):
            found.setdefault(identifier, []).append(page)
    return found


def covered(module: str, name: str, shown: dict[str, list[Path]]) -> bool:
    """Whether a directive shows `name` of `module`: its own, or its whole module's."""
    return f"{module}.{name}" in shown or module in shown


def test_the_reference_shows_every_public_name() -> None:
    shown = directives()
    missing = [
        f"{module}.{name}" for module, name, _ in public_names() if not covered(module, name, shown)
    ]
    assert missing == [], (
        "add a directive such as '::: composerv.tcp' for each to the page of its "
        "topic under docs/reference/"
    )


def test_the_reference_names_nothing_that_is_not_public() -> None:
    """A directive for a name no ``__all__`` exports is stale (or private)."""
    public = {f"{module}.{name}" for module, name, _ in public_names()}
    public |= {module.__name__ for module in public_modules()}
    stale = [
        f"{identifier} ({', '.join(page.name for page in pages)})"
        for identifier, pages in directives().items()
        if identifier.startswith("composerv") and identifier not in public
    ]
    assert stale == []


def test_each_public_name_has_one_home_page() -> None:
    """Topics partition the names: a name shown twice would have two anchors to link to."""
    twice = {name: pages for name, pages in directives().items() if len(pages) > 1}
    assert twice == {}


def test_every_page_is_in_the_sites_navigation() -> None:
    """mkdocs builds a page missing from the nav without a warning, where no reader
    finds it; and a nav entry without its page fails the strict build."""
    nav = set(
        re.findall(r"^\s*- (?:[^:\n]+: )?(\S+\.md)$", (ROOT / "mkdocs.yml").read_text(), re.M)
    )
    pages = {str(page.relative_to(DOCS)) for page in DOCS.rglob("*.md")}
    assert pages == nav


def test_ci_builds_the_site_strictly() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install -q -e '.[docs]'" in ci
    assert re.search(r"mkdocs build --strict (?!.*--quiet)", ci), "--quiet hides strict's warnings"


# --- Every public class and function has a docstring --------------------------------


def is_documentable(value: object) -> bool:
    """A class or a function (type aliases carry no docstring of their own)."""
    if typing.get_origin(value) is not None:  # Callable[...] passes isclass on 3.10
        return False
    return inspect.isclass(value) or inspect.isfunction(value)


def own_doc(value: object) -> str:
    """The docstring `value` itself has (a class's is not inherited from its bases)."""
    doc = vars(value).get("__doc__") if inspect.isclass(value) else value.__doc__
    return (doc or "").strip()


def unwrapped(member: object) -> object:
    """The function under a staticmethod or classmethod; anything else as it is."""
    return member.__func__ if isinstance(member, (staticmethod, classmethod)) else member


def public_members(cls: type) -> Iterator[str]:
    """The public methods and properties `cls` itself defines (not attrs' fields)."""
    fields = set(attrs.fields_dict(cls)) if attrs.has(cls) else set()
    for name, member in vars(cls).items():
        if name.startswith("_") or name in fields:
            continue
        if inspect.isfunction(unwrapped(member)) or isinstance(member, property):
            yield name


def inherited_doc(cls: type, name: str) -> str:
    """The docstring of `name` on `cls` or the nearest base that documents it: an
    implementation of a documented interface method is documented by it."""
    for base in cls.__mro__:
        member = unwrapped(vars(base).get(name))
        if doc := (getattr(member, "__doc__", None) or "").strip():
            return doc
    return ""


def test_every_public_class_and_function_has_a_docstring() -> None:
    undocumented = [
        f"{module}.{name}"
        for module, name, value in public_names()
        if is_documentable(value) and not own_doc(value)
    ]
    assert undocumented == []


def test_every_public_method_and_property_has_a_docstring() -> None:
    undocumented = sorted(
        {
            f"{value.__module__}.{value.__qualname__}.{member}"
            for _, _, value in public_names()
            if inspect.isclass(value) and value.__module__.startswith("composerv")
            for member in public_members(value)
            if not inherited_doc(value, member)
        }
    )
    assert undocumented == []


# --- Every python block of the docs runs --------------------------------------------

# A block preceded by this comment is not run: the reason says why (it binds a
# production address, needs files a reader has, is half of a comparison).
NOT_RUN = re.compile(r"<!--\s*not-run:(.*?)-->\s*$")
MARKER = re.compile(r"^<!--\s*not-run:", re.MULTILINE)
FENCE = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)


@attrs.frozen
class Block:
    """One ```python block of a documentation file."""

    path: Path
    line: int
    source: str
    not_run: str | None
    """Why the block is not run, from its marker; None: it runs."""

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    def code(self) -> types.CodeType:
        """The block compiled at its place in its file, so tracebacks name the file's lines."""
        return compile("\n" * self.line + self.source, str(self.path), "exec")


def documentation_files() -> list[Path]:
    return [*sorted(DOCS.rglob("*.md")), ROOT / "README.md"]


def blocks_of(path: Path) -> list[Block]:
    """The python blocks of `path`, in order, each with its not-run marker's reason."""
    text = path.read_text()
    found = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = NOT_RUN.search(before)
        reason = marker.group(1).strip() if marker else None
        line = text.count("\n", 0, match.start()) + 1
        found.append(Block(path, line, match.group(1), reason))
    return found


ALL_BLOCKS = [block for path in documentation_files() for block in blocks_of(path)]


def test_not_run_markers_give_a_reason_and_precede_a_block() -> None:
    markers = sum(len(MARKER.findall(path.read_text())) for path in documentation_files())
    marked = [block for block in ALL_BLOCKS if block.not_run is not None]
    assert [block.where for block in marked if not block.not_run] == [], "say why, after not-run:"
    assert markers == len(marked), "a not-run marker must be the line just before a ```python block"


@pytest.mark.parametrize(
    "block",
    [block for block in ALL_BLOCKS if block.not_run is not None],
    ids=lambda block: block.where,
)
def test_block_not_run(block: Block) -> None:
    """Compiled, not run, then listed as skipped with the marker's reason, so the
    blocks not run stay visible and still parse."""
    block.code()
    pytest.skip(f"{block.where} not-run: {block.not_run}")


def loopback_port_zero(address: object) -> bool:
    host, port = address[0], address[1]  # type: ignore[index]  # an inet address
    if host == "localhost":
        return port == 0
    try:
        return ipaddress.ip_address(host).is_loopback and port == 0
    except ValueError:
        return False


@pytest.fixture
def doc_sandbox(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[list[composerv.Server[Any, Any]]]:
    """What a doc block runs in: a temporary working directory (for unix socket paths),
    inet sockets bound only to loopback with port 0, and every `Server` recorded.

    `serve_forever` called by the block itself, as a reader runs a server until
    Ctrl-C, is asked to stop first (a stop before `serve_forever` makes it return at
    once); one the block runs in a thread of its own is the block's to stop. The
    block must close every server it made (a ``with`` block, `server_close`).
    """
    monkeypatch.chdir(tmp_path)
    bind = socket.socket.bind

    def guarded_bind(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not loopback_port_zero(address):
            raise AssertionError(f"a doc block binds {address!r}: use 127.0.0.1 or ::1, port 0")
        bind(self, address)

    monkeypatch.setattr(socket.socket, "bind", guarded_bind)

    servers: list[composerv.Server[Any, Any]] = []
    runner = threading.current_thread()
    init: Callable[..., None] = composerv.Server.__init__
    serve_forever: Callable[..., None] = composerv.Server.serve_forever

    def recording_init(self: composerv.Server[Any, Any], *args: Any, **kwargs: Any) -> None:
        servers.append(self)
        init(self, *args, **kwargs)

    def until_the_reader_stops(self: composerv.Server[Any, Any], *args: Any, **kw: Any) -> None:
        if threading.current_thread() is runner:
            self.shutdown()
        serve_forever(self, *args, **kw)

    monkeypatch.setattr(composerv.Server, "__init__", recording_init)
    monkeypatch.setattr(composerv.Server, "serve_forever", until_the_reader_stops)
    try:
        yield servers
    finally:
        for server in servers:
            server.server_close()


@pytest.mark.parametrize(
    "path",
    [path for path in documentation_files() if any(b.not_run is None for b in blocks_of(path))],
    ids=lambda path: str(path.relative_to(ROOT)),
)
def test_the_python_blocks_run_as_written(
    path: Path, composerv_no_leaks: None, doc_sandbox: list[composerv.Server[Any, Any]]
) -> None:
    """The blocks of one file, in order, in one namespace: what a reader would paste."""
    namespace: dict[str, Any] = {"__name__": "__doc_block__"}
    for block in blocks_of(path):
        if block.not_run is None:
            exec(block.code(), namespace)
    left_open = [repr(server) for server in doc_sandbox if not server.closed]
    assert left_open == [], f"{path.name}: close every server a block starts"
