"""Rewriting a source's socketserver imports to compat, and proving nothing else changed.

Only the module-name tokens are replaced, in the decoded text, so comments,
formatting, line endings and the encoding cookie stay as they were. Before a
result is accepted it is checked: it must tokenize to the original tokens with
only the module names replaced, and, when the original parses as Python 3, its
syntax tree must be the original's with only those imports changed.
"""

from __future__ import annotations

import ast
import difflib
import re
import tokenize

import attrs

from ._imports import COMPAT, LEGACY_MODULES, ImportRewrite, Note, find
from ._source import Source, SourceError, decode, parse, physical_lines, tokens

__all__ = ["Migration", "migrate_source"]


@attrs.frozen
class Migration:
    """What migrating one source does: its new text, the imports rewritten, and notes."""

    source: Source
    """The source as it was."""
    text: str
    """The migrated text (the original's if nothing changed)."""
    rewrites: tuple[ImportRewrite, ...]
    """The imports rewritten, in the order they appear."""
    notes: tuple[Note, ...]
    """What the tool left alone and the reader should look at."""
    not_python3: str | None
    """Why the source does not parse as Python 3 (a Python 2 file), or None if it does."""

    @property
    def changed(self) -> bool:
        """Whether migrating changes the file."""
        return bool(self.rewrites)

    @property
    def imports_legacy_module(self) -> bool:
        """Whether the file imports, or dynamically imports, socketserver at all."""
        return bool(self.rewrites or self.notes)

    def migrated(self) -> bytes:
        """The migrated file's bytes, in its own encoding."""
        return self.source.encode(self.text)

    def diff(self, name: str) -> str:
        """The change as a unified diff that ``patch -p0`` applies to the file `name`."""
        lines = difflib.unified_diff(
            physical_lines(self.source.text), physical_lines(self.text), name, name
        )
        return "".join(
            line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
            for line in lines
        )


def migrate_source(data: bytes) -> Migration:
    """Migrate the source `data`; `SourceError` if it cannot be read or rewritten safely."""
    source = decode(data)
    original = tokens(source.text)
    rewrites, notes = find(original)
    text = _apply(source, rewrites)
    tree = parse(source.text)
    if rewrites:
        _check(original, rewrites, text, tree)
    return Migration(
        source,
        text,
        tuple(rewrites),
        tuple(notes),
        not_python3=f"line {tree.lineno}: {tree.msg}" if isinstance(tree, SyntaxError) else None,
    )


def _apply(source: Source, rewrites: list[ImportRewrite]) -> str:
    text = source.text
    for rewrite in sorted(rewrites, key=lambda r: r.token.start, reverse=True):
        start = source.offset(*rewrite.token.start)
        end = start + len(rewrite.token.string)
        if text[start:end] != rewrite.token.string:
            raise SourceError(
                f"line {rewrite.line}: the tokenizer's positions do not match the text "
                "(a line ending other than \\n or \\r\\n?)"
            )
        text = text[:start] + rewrite.replacement + text[end:]
    return text


def _check(
    original: list[tokenize.TokenInfo],
    rewrites: list[ImportRewrite],
    text: str,
    tree: ast.Module | SyntaxError,
) -> None:
    replacements = {rewrite.token: rewrite.replacement for rewrite in rewrites}
    expected: list[tuple[int, str]] = []
    for token in original:
        if token in replacements:
            expected.extend(
                (tokenize.NAME if word.isidentifier() else tokenize.OP, word)
                for word in re.findall(r"\w+|\S", replacements[token])
            )
        else:
            expected.append(_kind(token))
    try:
        migrated = tokens(text)
    except SourceError as exc:
        raise _unsafe(str(exc)) from None
    if _kinds(migrated) != expected:
        raise _unsafe("its tokens would change beyond the module names")
    if isinstance(tree, ast.Module):
        migrated_tree = parse(text)
        if not isinstance(migrated_tree, ast.Module):
            raise _unsafe(f"it would no longer parse (line {migrated_tree.lineno})")
        if ast.dump(_ToCompat().visit(tree)) != ast.dump(migrated_tree):
            raise _unsafe("its syntax tree would change beyond the imports")


def _kinds(found: list[tokenize.TokenInfo]) -> list[tuple[int, str]]:
    return [_kind(token) for token in found]


def _kind(token: tokenize.TokenInfo) -> tuple[int, str]:
    return token.type, token.string


def _unsafe(reason: str) -> SourceError:
    return SourceError(
        f"rewriting its imports is not safe: {reason} "
        "(a bug in composerv migrate: please report it)"
    )


class _ToCompat(ast.NodeTransformer):
    """What the rewrite must have done, said on the syntax tree."""

    def visit_Import(self, node: ast.Import) -> ast.Import:  # NodeTransformer's name
        for alias in node.names:
            if alias.name in LEGACY_MODULES:
                alias.asname = alias.asname or alias.name
                alias.name = f"{COMPAT}.{alias.name}"
        return node

    def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.ImportFrom:
        if node.level == 0 and node.module in LEGACY_MODULES:
            node.module = f"{COMPAT}.{node.module}"
        return node
