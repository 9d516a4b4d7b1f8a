"""The public API: composerv/__init__.py re-exports exactly its `__all__` (that each
name is documented, and shown in the API reference, is tests/test_docs.py's)."""

from __future__ import annotations

import types

import attrs

import composerv


def test_all_is_sorted_and_resolves() -> None:
    assert list(composerv.__all__) == sorted(composerv.__all__)
    for name in composerv.__all__:
        assert hasattr(composerv, name), name


def test_every_public_name_is_in_all() -> None:
    public = {
        name
        for name, value in vars(composerv).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(composerv.__all__)


def test_values_are_frozen_attrs_classes() -> None:
    values = [
        composerv.tcp(("127.0.0.1", 0)),
        composerv.udp(("127.0.0.1", 0)),
        composerv.unix_stream("/tmp/x.sock"),
        composerv.unix_datagram("/tmp/y.sock"),
        composerv.sync(),
        composerv.threaded(),
        composerv.forking(),
        composerv.stream_handler(print),
        composerv.datagram_handler(print),
    ]
    for value in values:
        assert attrs.has(type(value)), type(value)
        assert not hasattr(value, "__dict__"), f"{type(value).__name__} is not slotted"
        field = attrs.fields(type(value))[0] if attrs.fields(type(value)) else None
        if field is not None:
            try:
                setattr(value, field.name, getattr(value, field.name))
            except attrs.exceptions.FrozenInstanceError:
                continue
            raise AssertionError(f"{type(value).__name__} is mutable")


def test_evolve_makes_variations_with_validation() -> None:
    base = composerv.tcp(("127.0.0.1", 8000))
    variant = attrs.evolve(base, backlog=512)
    assert (base.backlog, variant.backlog) == (128, 512)
    assert variant.address == base.address
