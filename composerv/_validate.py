"""Small attrs validators whose messages name the field and the value."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from ._errors import ConfigurationError


def positive_int(_instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    """Accept an int greater than zero (bool is rejected: True is not a count)."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigurationError(f"{attribute.name} must be a positive int, not {value!r}")


def flag(_instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    """Accept exactly True or False, so that a string such as "no" is not taken as true."""
    if not isinstance(value, bool):
        raise ConfigurationError(f"{attribute.name} must be True or False, not {value!r}")


def optional_flag(_instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    """Accept True, False or None (None: left to another value to decide)."""
    if value is not None and not isinstance(value, bool):
        raise ConfigurationError(f"{attribute.name} must be True, False or None, not {value!r}")


def optional_positive_number(
    _instance: Any, attribute: attrs.Attribute[Any], value: object
) -> None:
    """Accept None or an int/float greater than zero."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigurationError(
            f"{attribute.name} must be a positive number of seconds or None, not {value!r}"
        )


def non_negative_number(_instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    """Accept an int/float of seconds, zero included."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ConfigurationError(
            f"{attribute.name} must be a number of seconds >= 0, not {value!r}"
        )


def callable_value(_instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    """Accept anything callable; say what was passed otherwise."""
    if not callable(value):
        raise ConfigurationError(
            f"{attribute.name} must be callable, not {type(value).__name__} {value!r}"
        )


def instance_of(
    expected: type, examples: str
) -> Callable[[Any, attrs.Attribute[Any], object], None]:
    """Accept instances of `expected`; the message suggests `examples`."""

    def check(_instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, expected):
            raise ConfigurationError(
                f"{attribute.name} must be a {expected.__name__} such as {examples}, "
                f"not {type(value).__name__} {value!r}"
            )

    return check
