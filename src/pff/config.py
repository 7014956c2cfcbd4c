"""Typed configuration: dataclasses <-> TOML/JSON dictionaries, with strict checking.

A config is a frozen dataclass whose defaults sit next to the code that uses
it. ``from_dict`` builds one from a parsed TOML/JSON dictionary: an unknown
key, a value of the wrong type or a value out of range is a ``PffError``
naming the dotted key (``model.kernel: must be an odd number >= 1, got 4``).
Supported field types: ``bool``, ``int``, ``float``, ``str``,
``Literal[...]``, ``tuple[T, ...]``, ``dict[str, Any]`` and nested config
dataclasses. A dataclass may define ``config_base(data)`` returning the
instance whose values are the defaults (``[model] arch = "pff-small"``).
A numeric field declared with :func:`bounded` must be finite and within its
bounds; the dataclass checks that in ``__post_init__`` with
:func:`check_bounds`, so configs built in Python are checked too.
"""
from __future__ import annotations

import dataclasses
import math
import operator
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar

from pff.errors import PffError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

T = TypeVar("T")


_BOUNDS = {"ge": (operator.ge, ">="), "gt": (operator.gt, ">"), "le": (operator.le, "<="), "lt": (operator.lt, "<")}


def bounded(default: Any, *, ge: float | None = None, gt: float | None = None,
            le: float | None = None, lt: float | None = None) -> Any:
    """A dataclass field holding a number (or a tuple of numbers) that must be finite and in bounds.

    ``workers: int = bounded(1, ge=0, le=1024)``; :func:`check_bounds` checks it.
    """
    bounds = {name: value for name, value in (("ge", ge), ("gt", gt), ("le", le), ("lt", lt)) if value is not None}
    return dataclasses.field(default=default, metadata={"bounds": bounds})


def check_bounds(config: Any) -> None:
    """PffError naming the first field of ``config`` declared with :func:`bounded` whose value is not
    a finite number within its bounds (``workers: must be >= 0 and <= 1024, got -1``)."""
    for field in dataclasses.fields(config):
        bounds = field.metadata.get("bounds")
        if bounds is None:
            continue
        value = getattr(config, field.name)
        items = enumerate(value) if isinstance(value, tuple) else [(None, value)]
        for index, number in items:
            key = field.name if index is None else f"{field.name}[{index}]"
            if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number):
                raise PffError(f"{key}: must be a finite number, got {number!r}")
            if not all(_BOUNDS[name][0](number, limit) for name, limit in bounds.items()):
                wanted = " and ".join(f"{_BOUNDS[name][1]} {limit}" for name, limit in bounds.items())
                raise PffError(f"{key}: must be {wanted}, got {number!r}")


def load_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML file; PffError if it is missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise PffError(f"config file '{path}' does not exist")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise PffError(f"config file '{path}' is not valid TOML: {err}") from err


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"model.kernel=9"`` -> ``(["model", "kernel"], 9)``.

    The value is read as a TOML value (``9``, ``5e-4``, ``true``, ``[1, 2]``,
    ``"a"``); anything that is not valid TOML is taken as a plain string, so
    ``model.constraint=softmax`` works without quotes.
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise PffError(f"override '{text}' is not of the form key=value (e.g. model.kernel=9)")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return key.split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """A copy of ``data`` with each ``key=value`` override set (sections created as needed)."""
    import copy

    data = copy.deepcopy(data)
    for text in overrides:
        path, value = parse_override(text)
        node = data
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise PffError(f"override '{text}': '{part}' is a value, not a section")
            node = child
        node[path[-1]] = value
    return data


def from_dict(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    """Build the config dataclass ``cls`` from ``data``; PffError naming the first bad key."""
    if not isinstance(data, dict):
        raise PffError(f"{prefix.rstrip('.') or 'config'}: expected a table of keys, got {_show(data)}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in known:
            raise PffError(f"unknown config key '{prefix}{key}' (known in this section: {', '.join(sorted(known))})")
    values = {key: _convert(hints[key], value, f"{prefix}{key}") for key, value in data.items()}
    base = getattr(cls, "config_base", None)
    try:
        if base is not None:
            return dataclasses.replace(base(values), **values)
        return cls(**values)
    except PffError as err:
        raise PffError(f"{prefix}{err}") from err


def to_dict(config: Any) -> dict[str, Any]:
    """The inverse of ``from_dict``: nested dicts of JSON/TOML-friendly values."""
    out: dict[str, Any] = {}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if dataclasses.is_dataclass(value):
            value = to_dict(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[field.name] = value
    return out


def _show(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"


def _convert(hint: Any, value: Any, key: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, prefix=f"{key}.")
    if origin is Literal:
        if value not in args:
            raise PffError(f"{key}: must be one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise PffError(f"{key}: must be a list, got {_show(value)}")
        return tuple(_convert(args[0], v, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise PffError(f"{key}: must be a table, got {_show(value)}")
        return dict(value)
    if origin in (typing.Union, types.UnionType):
        raise TypeError(f"{key}: union types are not supported in configs")
    if hint is bool:
        if not isinstance(value, bool):
            raise PffError(f"{key}: must be true or false, got {_show(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise PffError(f"{key}: must be an integer, got {_show(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise PffError(f"{key}: must be a number, got {_show(value)}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise PffError(f"{key}: must be a string, got {_show(value)}")
        return value
    raise TypeError(f"{key}: unsupported config type {hint!r}")
