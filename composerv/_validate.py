"""Small attrs validators whose messages name the field and the value.

A value of the wrong type raises `ConfigurationTypeError` (a `TypeError`); a value
of the right type that cannot be used raises `ConfigurationError` (a `ValueError`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeGuard

import attrs

from ._errors import ConfigurationError, ConfigurationTypeError

__all__ = [
    "callable_value",
    "check_type",
    "flag",
    "instance_of",
    "is_tuple",
    "non_negative_number",
    "optional_flag",
    "optional_positive_int",
    "optional_positive_number",
    "positive_int",
    "positive_number",
]

Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


def check_type(name: str, value: object, expected: type | tuple[type, ...], wanted: str) -> None:
    """Raise `ConfigurationTypeError` unless `value` is an `expected` (bool is never a number)."""
    numeric = expected in (int, float, (int, float))
    if not isinstance(value, expected) or (numeric and isinstance(value, bool)):
        raise ConfigurationTypeError(
            f"{name} must be {wanted}, not {type(value).__name__} {value!r}"
        )


def is_tuple(value: object) -> TypeGuard[tuple[object, ...]]:
    """``isinstance(value, tuple)``, which narrows an `object` to a tuple of unknown
    items under pyright; checks of its items then narrow each one."""
    return isinstance(value, tuple)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_positive_int(name: str, value: object, wanted: str) -> None:
    check_type(name, value, int, wanted)
    assert isinstance(value, int)
    if value <= 0:
        raise ConfigurationError(f"{name} must be {wanted}, not {value!r}")


def positive_int(_instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    """Accept an int greater than zero (bool is rejected: True is not a count)."""
    _check_positive_int(attribute.name, value, "a positive int")


def optional_positive_int(_instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    """Accept None or an int greater than zero."""
    if value is not None:
        _check_positive_int(attribute.name, value, "a positive int or None")


def flag(_instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    """Accept exactly True or False, so that a string such as "no" is not taken as true."""
    check_type(attribute.name, value, bool, "True or False")


def optional_flag(_instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    """Accept True, False or None (None: left to another value to decide)."""
    if value is not None:
        check_type(attribute.name, value, bool, "True, False or None")


def positive_number(_instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    """Accept an int/float of seconds greater than zero."""
    if not _is_number(value):
        raise ConfigurationTypeError(
            f"{attribute.name} must be a positive number of seconds, "
            f"not {type(value).__name__} {value!r}"
        )
    if not value > 0:  # type: ignore[operator]  # a number, checked above
        raise ConfigurationError(
            f"{attribute.name} must be a positive number of seconds, not {value!r}"
        )


def optional_positive_number(
    _instance: Any, attribute: attrs.Attribute[Any], value: object
) -> None:
    """Accept None or an int/float greater than zero."""
    if value is None:
        return
    if not _is_number(value):
        raise ConfigurationTypeError(
            f"{attribute.name} must be a positive number of seconds or None, "
            f"not {type(value).__name__} {value!r}"
        )
    if not value > 0:  # type: ignore[operator]  # a number, checked above
        raise ConfigurationError(
            f"{attribute.name} must be a positive number of seconds or None, not {value!r}"
        )


def non_negative_number(_instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    """Accept an int/float of seconds, zero included."""
    if not _is_number(value):
        raise ConfigurationTypeError(
            f"{attribute.name} must be a number of seconds >= 0, "
            f"not {type(value).__name__} {value!r}"
        )
    if not value >= 0:  # type: ignore[operator]  # a number, checked above
        raise ConfigurationError(
            f"{attribute.name} must be a number of seconds >= 0, not {value!r}"
        )


def callable_value(_instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    """Accept anything callable; say what was passed otherwise."""
    if not callable(value):
        raise ConfigurationTypeError(
            f"{attribute.name} must be callable, not {type(value).__name__} {value!r}"
        )


def instance_of(expected: type, examples: str) -> Validator:
    """Accept instances of `expected`; the message suggests `examples`."""

    def check(_instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, expected):
            raise ConfigurationTypeError(
                f"{attribute.name} must be a {expected.__name__} such as {examples}, "
                f"not {type(value).__name__} {value!r}"
            )

    return check
