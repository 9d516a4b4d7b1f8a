"""Finding the imports of socketserver in a token stream, Python 2 or 3.

``import`` is a keyword in both languages, so every ``import`` token starts an
import statement (or is the second half of ``from M import``): no parse is needed
to find them, and what is only mentioned in strings and comments is never a token
of its own. Only absolute imports of the module itself are rewritten; a relative
import names a module of the program's own package.
"""

from __future__ import annotations

import ast
import tokenize
from collections.abc import Iterator, Sequence
from typing import Literal

import attrs

__all__ = ["COMPAT", "LEGACY_MODULES", "ImportRewrite", "Note", "find", "may_import"]

LEGACY_MODULES = ("socketserver", "SocketServer")
"""The stdlib module's Python 3 and Python 2 names; compat has a module of each name."""
COMPAT = "compat"
"""The package that holds the replacements."""
# Functions that import a module named by a string, at run time.
_DYNAMIC_IMPORTERS = ("__import__", "import_module")
_SKIPPED = (tokenize.COMMENT, tokenize.NL, tokenize.ENCODING)


@attrs.frozen
class ImportRewrite:
    """One module name in an import statement, and the text that replaces it."""

    token: tokenize.TokenInfo
    """The NAME token of the module (``socketserver`` or ``SocketServer``)."""
    replacement: str
    """What goes where the token was, e.g. ``compat.socketserver as socketserver``."""
    before: str
    """The import as written, one clause, e.g. ``import SocketServer``."""
    after: str
    """The same clause once rewritten."""

    @property
    def line(self) -> int:
        """The line of the module name."""
        return self.token.start[0]


@attrs.frozen
class Note:
    """Something about a file's imports that the reader should know, at a line."""

    line: int
    message: str


@attrs.frozen
class _Item:
    """One clause of an import statement."""

    kind: Literal["import", "from"]
    module: list[tokenize.TokenInfo]
    alias: str | None = None
    names: str = ""


def may_import(data: bytes) -> bool:
    """Whether the source `data` could import socketserver at all: it names it somewhere.

    A quick test that spares tokenizing the many files that do not: every Python
    source encoding leaves ASCII letters as they are, so the name is in the bytes.
    """
    return any(name.encode() in data for name in LEGACY_MODULES)


def find(tokens: Sequence[tokenize.TokenInfo]) -> tuple[list[ImportRewrite], list[Note]]:
    """The rewrites that move `tokens`' socketserver imports to compat, and notes."""
    rewrites: list[ImportRewrite] = []
    notes: list[Note] = []
    for item in _Scanner([t for t in tokens if t.type not in _SKIPPED]).items():
        if isinstance(item, Note):
            notes.append(item)
        elif len(item.module) == 1 and item.module[0].string in LEGACY_MODULES:
            rewrites.append(_rewrite(item))
        elif item.module and item.module[0].string in LEGACY_MODULES:
            dotted = ".".join(t.string for t in item.module)
            notes.append(
                Note(
                    item.module[0].start[0],
                    f"{item.kind} {dotted}: {item.module[0].string} is a module, not a package, "
                    "so this import fails on any Python; left alone",
                )
            )
    return rewrites, notes


def _rewrite(item: _Item) -> ImportRewrite:
    token = item.module[0]
    name = token.string
    if item.kind == "from":
        return ImportRewrite(
            token,
            f"{COMPAT}.{name}",
            before=f"from {name} import {item.names}",
            after=f"from {COMPAT}.{name} import {item.names}",
        )
    bound = item.alias or name
    return ImportRewrite(
        token,
        f"{COMPAT}.{name}" if item.alias else f"{COMPAT}.{name} as {name}",
        before=f"import {name}" + (f" as {item.alias}" if item.alias else ""),
        after=f"import {COMPAT}.{name} as {bound}",
    )


class _Scanner:
    """A cursor over the tokens that matter (no comments or non-logical newlines)."""

    def __init__(self, tokens: list[tokenize.TokenInfo]) -> None:
        self._tokens = tokens
        self._at = 0

    def items(self) -> Iterator[_Item | Note]:
        while self._at < len(self._tokens):
            token = self._take()
            if self._is_name(token, "from"):
                yield from self._from_import()
            elif self._is_name(token, "import"):
                yield from self._import()
            elif token.type == tokenize.NAME and token.string in _DYNAMIC_IMPORTERS:
                yield from self._dynamic_import(token)

    def _from_import(self) -> Iterator[_Item]:
        # Also reached by `yield from x` and `raise E from e`, which stop before `import`.
        relative = False
        while self._peek().type == tokenize.OP and set(self._peek().string) == {"."}:
            relative = True
            self._take()
        module = self._dotted_name()
        if not self._is_name(self._peek(), "import"):
            return
        self._take()
        names = self._imported_names()
        if not relative:
            yield _Item("from", module, names=names)

    def _import(self) -> Iterator[_Item]:
        while module := self._dotted_name():
            alias = None
            if self._is_name(self._peek(), "as"):
                self._take()
                alias = self._take().string
            yield _Item("import", module, alias=alias)
            if self._peek().string != ",":
                return
            self._take()

    def _dynamic_import(self, function: tokenize.TokenInfo) -> Iterator[Note]:
        if self._peek().string != "(":
            return
        self._take()
        argument = self._peek()
        if argument.type != tokenize.STRING:
            return
        try:
            name = ast.literal_eval(argument.string)
        except (ValueError, SyntaxError):
            return
        if isinstance(name, str) and name.partition(".")[0] in LEGACY_MODULES:
            top = name.partition(".")[0]
            yield Note(
                function.start[0],
                f"{function.string}({name!r}) imports the stdlib module at run time: "
                f"not rewritten; make it {COMPAT}.{top} by hand",
            )

    def _imported_names(self) -> str:
        """The names after ``from M import``, as one line: ``a, b as c`` or ``*``."""
        words: list[str] = []
        depth = 0
        while self._at < len(self._tokens):
            token = self._peek()
            if token.string in ("(", ")"):
                depth += 1 if token.string == "(" else -1
            elif depth == 0 and (
                token.type in (tokenize.NEWLINE, tokenize.ENDMARKER) or token.string == ";"
            ):
                break
            elif token.string == "," and words:
                words[-1] += ","
            else:
                words.append(token.string)
            self._take()
        return " ".join(words).rstrip(",")

    def _dotted_name(self) -> list[tokenize.TokenInfo]:
        if self._peek().type != tokenize.NAME or self._peek().string in ("import", "as"):
            return []
        parts = [self._take()]
        while self._peek().string == "." and self._peek(1).type == tokenize.NAME:
            self._take()
            parts.append(self._take())
        return parts

    def _peek(self, ahead: int = 0) -> tokenize.TokenInfo:
        # Every stream ends with ENDMARKER, which no rule consumes: stand on it at the end.
        return self._tokens[min(self._at + ahead, len(self._tokens) - 1)]

    def _take(self) -> tokenize.TokenInfo:
        token = self._peek()
        self._at += 1
        return token

    @staticmethod
    def _is_name(token: tokenize.TokenInfo, keyword: str) -> bool:
        return token.type == tokenize.NAME and token.string == keyword
