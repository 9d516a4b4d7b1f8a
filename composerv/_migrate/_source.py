"""Reading a Python source the way Python does, without losing a byte of it.

A source is decoded with the encoding Python would use (its cookie or BOM, else
UTF-8) and split into physical lines at ``\\n`` only, as `tokenize` splits them,
so that a token's (row, column) is an offset in the text and encoding the text
again gives back the original bytes.
"""

from __future__ import annotations

import ast
import io
import tokenize
import warnings

import attrs

__all__ = ["Source", "SourceError", "decode", "parse", "physical_lines", "tokens"]


class SourceError(Exception):
    """A file migrate cannot read, tokenize or rewrite safely; the message says why."""


@attrs.frozen
class Source:
    """A source file's text, decoded as Python decodes it."""

    text: str
    """The whole text, line endings and all."""
    encoding: str
    """The codec that turns `text` back into the file's bytes (``utf-8-sig`` keeps a BOM)."""

    def encode(self, text: str) -> bytes:
        """`text` in this file's encoding."""
        return text.encode(self.encoding)

    def _find_line_starts(self) -> tuple[int, ...]:
        starts = [0]
        for line in physical_lines(self.text):
            starts.append(starts[-1] + len(line))
        return tuple(starts)

    # A Factory rather than the @_line_starts.default decorator, which type checkers
    # cannot see on a field declared with its type.
    _line_starts: tuple[int, ...] = attrs.field(
        init=False,
        repr=False,
        eq=False,
        default=attrs.Factory(_find_line_starts, takes_self=True),
    )

    def offset(self, row: int, column: int) -> int:
        """Where a token position (row from 1, column from 0) falls in `text`."""
        return self._line_starts[row - 1] + column


def decode(data: bytes) -> Source:
    """The `Source` in `data`; `SourceError` if Python could not decode it either."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        text = data.decode(encoding)
    except (SyntaxError, UnicodeDecodeError, LookupError) as exc:
        raise SourceError(f"cannot decode it: {exc}") from None
    source = Source(text, encoding)
    if source.encode(text) != data:
        raise SourceError(f"its bytes do not survive decoding as {encoding} and encoding back")
    return source


def physical_lines(text: str) -> list[str]:
    """`text` cut after each ``\\n``, as `tokenize` reads it (not at ``\\r`` or form feeds)."""
    lines = [line + "\n" for line in text.split("\n")]
    lines[-1] = lines[-1][:-1]
    if not lines[-1]:
        lines.pop()
    return lines


def tokens(text: str) -> list[tokenize.TokenInfo]:
    """The tokens of `text`; `SourceError` where it cannot be tokenized.

    Python 2 sources tokenize too (print statements, ``except E, e``), but some of
    their forms only on Python 3.11 and older (tabs mixed with spaces).
    """
    try:
        with warnings.catch_warnings():
            # Old sources are full of what newer Pythons warn about, e.g. "\d" in a string.
            warnings.simplefilter("ignore")
            found = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except tokenize.TokenError as exc:
        message, (line, _) = exc.args
        raise SourceError(f"cannot tokenize it (line {line}: {message})") from None
    except SyntaxError as exc:  # IndentationError, TabError
        raise SourceError(f"cannot tokenize it (line {exc.lineno}: {exc.msg})") from None
    for token in found:
        # Python 3.11 and older go on past an unterminated string; 3.12 stops.
        if token.type == tokenize.ERRORTOKEN and token.string[:1] in ("'", '"'):
            raise SourceError(f"cannot tokenize it (line {token.start[0]}: unterminated string)")
    return found


def parse(text: str) -> ast.Module | SyntaxError:
    """The syntax tree of `text`, or the `SyntaxError` saying why it is not Python 3."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ast.parse(text)
    except SyntaxError as exc:
        return exc
    except ValueError as exc:  # a NUL byte in the source
        return SyntaxError(str(exc))
