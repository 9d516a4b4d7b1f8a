"""`layered(handler, *layers)`: a handler with layers around it, of the same kind."""

from __future__ import annotations

from typing import Any, TypeVar

import attrs

from .._errors import ConfigurationTypeError
from .._runtime import Handler, Layer

__all__ = ["layered", "layers_field"]

H = TypeVar("H", bound=Handler[Any])


def _check_layers(
    _instance: object, attribute: attrs.Attribute[Any], value: tuple[object, ...]
) -> None:
    # `value` is a tuple: attrs runs the converter first.
    for layer in value:
        if not isinstance(layer, Layer):
            raise ConfigurationTypeError(
                f"{attribute.name} must hold Layer values such as allow_from(...) or "
                f"rate_limit(...), not {type(layer).__name__} {layer!r}"
            )


def layers_field() -> Any:
    """The ``layers`` field of a handler value: a tuple of `Layer`, outermost first."""
    return attrs.field(default=(), converter=tuple, validator=_check_layers, kw_only=True)


def layered(handler: H, *layers: Layer) -> H:
    """`handler` with `layers` around it, outermost first: a value of the same kind,
    so it still fits the same transports and concurrencies (and mypy still says so).

    Example::

        from composerv.layers import access_log, allow_from, rate_limit

        guarded = layered(
            message_handler(answer),
            allow_from("127.0.0.0/8", "::1"),
            rate_limit(100, burst=20),
            access_log(),
        )
        serve(tcp(("127.0.0.1", 7)), evented(), guarded)

    Layering a layered handler adds the new layers inside the ones it has.
    """
    cls: Any = type(handler)
    if not attrs.has(cls) or "layers" not in attrs.fields_dict(cls):
        raise ConfigurationTypeError(
            f"layered() needs a handler value with layers, such as stream_handler(fn) or "
            f"message_handler(fn), not {type(handler).__name__} {handler!r}"
        )
    made: H = attrs.evolve(handler, layers=(*handler.layers, *layers))  # type: ignore[misc]  # an attrs value, checked above
    return made
