"""The operation table: what each operation is called, where it runs, and what it accepts.

One row per operation. A row knows its legacy JSON key (the original app's cache file),
its default fal.ai endpoint, its parameters with defaults and validation, and how those
parameters become the endpoint's arguments. The cache key is computed here too, so that
everything that changes an output is in one place.
"""

from __future__ import annotations

import hashlib
import json
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .errors import OperationError

__all__ = [
    "OPERATIONS",
    "Endpoint",
    "Operation",
    "Param",
    "cache_key",
    "get_operation",
]

KEY_VERSION = "nbimgprep-key-v1"


@dataclass(frozen=True)
class Param:
    """One parameter of an operation: its default and the values it accepts."""

    name: str
    default: Any
    choices: tuple[Any, ...] | None = None
    help: str = ""
    #: How a value reads in a title (``Operation.describe``): ``"{value}x"`` gives "2x".
    shown_as: str = "{name}={value}"

    def validate(self, operation: str, value: Any) -> Any:
        """``value`` as the call will use it, or an OperationError listing what is allowed.

        A whole-number parameter takes ints and whole floats (``2.0``), never a bool or text.
        """
        if isinstance(self.default, int) and not isinstance(self.default, bool):
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise self._refuse(operation, value)
            try:
                whole = int(value)  # type: ignore[call-overload]  # a numbers.Real
            except (ValueError, OverflowError):  # NaN, infinity
                raise self._refuse(operation, value) from None
            if whole != value:
                raise self._refuse(operation, value)
            value = whole
        if self.choices is not None and value not in self.choices:
            raise self._refuse(operation, value)
        return value

    def _refuse(self, operation: str, value: Any) -> OperationError:
        allowed = ", ".join(repr(c) for c in self.choices or ())
        hint = f"use one of {allowed}" if allowed else f"use a whole number like {self.default!r}"
        return OperationError(f"{operation}: {self.name}={value!r} is not allowed; {hint}.")


@dataclass(frozen=True)
class Endpoint:
    """A model endpoint and the fixed arguments sent with every call to it.

    ``Endpoint("fal-ai/aura-sr", {"checkpoint": "v2"})``. The arguments are part of the
    cache key: a result made with other arguments never answers this endpoint.
    """

    id: str
    arguments: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "arguments", MappingProxyType(dict(self.arguments)))

    def __hash__(self) -> int:
        return hash((self.id, json.dumps(dict(self.arguments), sort_keys=True, default=str)))

    def canonical(self) -> dict[str, Any]:
        return {"id": self.id, "arguments": dict(sorted(self.arguments.items()))}


@dataclass(frozen=True)
class Operation:
    """A row of the operation table."""

    name: str
    legacy_key: str
    fal_endpoint: str
    params: tuple[Param, ...]
    #: What a user gets, in a few words (listed when an unknown operation is asked for).
    summary: str
    # Maps canonical params to the fal endpoint's request arguments.
    fal_arguments: Callable[[Mapping[str, Any]], dict[str, Any]]
    #: The parameter that multiplies the output's width and height (upscale's ``scale``);
    #: None when the output has the input's size.
    size_factor: str | None = None

    @property
    def local_endpoint(self) -> str:
        """The offline backend's endpoint id: never equal to a fal.ai endpoint."""
        return f"local/{self.name}"

    def canonical_params(self, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Validate ``given`` and fill in defaults: an explicit default equals an omitted one."""
        given = dict(given or {})
        known = {p.name: p for p in self.params}
        unknown = sorted(set(given) - set(known))
        if unknown:
            accepted = ", ".join(known) or "no parameters"
            raise OperationError(
                f"{self.name} does not take {', '.join(unknown)}; it accepts {accepted}."
            )
        return {
            name: p.validate(self.name, given.get(name, p.default))
            for name, p in sorted(known.items())
        }

    def describe(self, params: Mapping[str, Any] | None = None) -> str:
        """The title every face shows: ``"upscale 2x"``, ``"remove background"``.

        Missing parameters read as their defaults, as the call would run them.
        """
        given = params or {}
        shown = [
            p.shown_as.format(name=p.name, value=given.get(p.name, p.default)) for p in self.params
        ]
        return " ".join([self.name.replace("_", " "), *shown])

    def output_size(self, size: tuple[int, int], params: Mapping[str, Any]) -> tuple[int, int]:
        """The (width, height) this operation produces from an input of ``size``."""
        factor = 1 if self.size_factor is None else int(params[self.size_factor])
        return size[0] * factor, size[1] * factor


def _birefnet_arguments(params: Mapping[str, Any]) -> dict[str, Any]:
    # PNG keeps the alpha channel that is the whole point of background removal.
    return {"output_format": "png"}


def _upscale_arguments(params: Mapping[str, Any]) -> dict[str, Any]:
    return {"upscale_factor": params["scale"], "output_format": "png"}


def _codeformer_arguments(params: Mapping[str, Any]) -> dict[str, Any]:
    # CodeFormer upscales by 2 unless told otherwise; face detail keeps the input's size.
    return {"upscaling": 1, "face_upscale": False}


OPERATIONS: Mapping[str, Operation] = MappingProxyType(
    {
        op.name: op
        for op in (
            Operation(
                name="remove_background",
                legacy_key="bgRemoved",
                fal_endpoint="fal-ai/birefnet/v2",
                params=(),
                summary="PNG with alpha, subject kept",
                fal_arguments=_birefnet_arguments,
            ),
            Operation(
                name="upscale",
                legacy_key="upscaled",
                fal_endpoint="fal-ai/seedvr/upscale/image",
                params=(Param("scale", 2, (2, 4), "how many times larger: 2 or 4", "{value}x"),),
                summary="the image, `scale` (2 or 4) times larger",
                fal_arguments=_upscale_arguments,
                size_factor="scale",
            ),
            Operation(
                name="face_detail",
                legacy_key="faceDetailed",
                fal_endpoint="fal-ai/codeformer",
                params=(),
                summary="faces restored and sharpened, rest unchanged",
                fal_arguments=_codeformer_arguments,
            ),
        )
    }
)


def get_operation(name: str) -> Operation:
    """The table row for ``name``, or an error listing the operations there are."""
    try:
        return OPERATIONS[name]
    except (KeyError, TypeError):
        what = " ".join(f"{op.name}: {op.summary}." for op in OPERATIONS.values())
        raise OperationError(
            f"Unknown operation {name!r}; use one of {', '.join(OPERATIONS)}. {what}"
        ) from None


def cache_key(
    image_hash: str, operation: str, endpoint: Endpoint, params: Mapping[str, Any]
) -> str:
    """SHA-256 over everything that changes an output: image, operation, endpoint, params."""
    payload = json.dumps(
        {
            "v": KEY_VERSION,
            "image": image_hash,
            "operation": operation,
            "endpoint": endpoint.canonical(),
            "params": dict(sorted(params.items())),
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()
