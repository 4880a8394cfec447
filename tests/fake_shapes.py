"""Check a JSON body against an SDK's request types, nested fields included, refusing fields they lack.

The openai and anthropic SDKs describe requests as TypedDicts. pydantic validates those but lets unknown
keys through at every level, so a misspelled `is_error` inside a block would pass; the real APIs refuse
it with a 400. `check_shape` walks the value and the type together and raises `ShapeError` naming the
path of the first thing that does not fit.
"""

from __future__ import annotations

import collections.abc
import functools
import types
import typing
from typing import Any

import typing_extensions
from pydantic import BaseModel, ValidationError

__all__ = ["ShapeError", "check_shape"]

_NONE = type(None)
_LISTS = {list, collections.abc.Iterable, collections.abc.Sequence, typing.Iterable, typing.Sequence}
_MAPS = {dict, collections.abc.Mapping, typing.Mapping}


class ShapeError(ValueError):
    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path


def check_shape(value: Any, annotation: Any, path: str = "body") -> None:
    """Raise ShapeError unless `value` (parsed JSON) is what `annotation` describes, with no unknown key."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Annotated, typing.Required, typing.NotRequired):
        check_shape(value, typing.get_args(annotation)[0], path)
    elif origin in (typing.Union, types.UnionType):
        _check_union(value, typing.get_args(annotation), path)
    elif origin is typing.Literal:
        if value not in typing.get_args(annotation):
            raise ShapeError(path, f"{value!r} is not one of {typing.get_args(annotation)}")
    elif typing_extensions.is_typeddict(annotation):  # the SDKs' TypedDicts are typing_extensions'
        _check_typeddict(value, annotation, path)
    elif origin in _LISTS:
        _expect(value, list, path)
        for index, item in enumerate(value):
            check_shape(item, typing.get_args(annotation)[0], f"{path}[{index}]")
    elif origin in _MAPS:
        _expect(value, dict, path)
        for key, item in value.items():
            check_shape(item, typing.get_args(annotation)[1], f"{path}.{key}")
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        try:
            annotation.model_validate(value)
        except ValidationError as exc:
            raise ShapeError(path, str(exc)) from exc
    else:
        _check_scalar(value, annotation, path)


def _check_typeddict(value: Any, annotation: Any, path: str) -> None:
    _expect(value, dict, path)
    fields, required = _fields(annotation)
    unknown = sorted(set(value) - set(fields))
    if unknown:
        raise ShapeError(path, f"{annotation.__name__} has no field {', '.join(map(repr, unknown))}")
    missing = sorted(required - set(value))
    if missing:
        raise ShapeError(path, f"{annotation.__name__} needs {', '.join(map(repr, missing))}")
    for key, item in value.items():
        check_shape(item, fields[key], f"{path}.{key}")


@functools.cache
def _fields(annotation: Any) -> tuple[dict[str, Any], frozenset[str]]:
    """A TypedDict's fields and its required keys (the SDKs mark them `Required[...]` in total=False classes)."""
    hints = typing_extensions.get_type_hints(annotation, include_extras=True)
    marked = {key for key, hint in hints.items() if typing.get_origin(hint) is typing.Required}  # type: ignore[comparison-overlap]  # typeshed types get_origin narrowly
    return hints, frozenset(marked | set(annotation.__required_keys__))


def _check_union(value: Any, options: tuple[Any, ...], path: str) -> None:
    errors = []
    for option in options:
        try:
            check_shape(value, option, path)
        except ShapeError as exc:
            errors.append(exc)
        else:
            return
    # The option the sender meant (its `type` matches, else the one that got furthest) says what is wrong.
    ranked = zip(options, errors, strict=True)
    raise max(ranked, key=lambda pair: (_names_type(pair[0], value), len(pair[1].path)))[1]


def _names_type(option: Any, value: Any) -> bool:
    """Whether a TypedDict option's `type` field is the value's `type`."""
    if not typing_extensions.is_typeddict(option) or not isinstance(value, dict) or "type" not in value:
        return False
    hint = _fields(option)[0].get("type")
    while typing.get_origin(hint) in (typing.Required, typing.NotRequired, typing.Annotated):
        hint = typing.get_args(hint)[0]
    return typing.get_origin(hint) is typing.Literal and value["type"] in typing.get_args(hint)


def _check_scalar(value: Any, annotation: Any, path: str) -> None:
    if annotation in (Any, object):
        return
    if annotation in (None, _NONE):
        _expect(value, _NONE, path)
    elif annotation is float:
        _expect(value, (int, float), path)
    elif annotation in (int, str, bool):
        _expect(value, annotation, path)
    else:
        raise ShapeError(path, f"the fake cannot check a {annotation!r}")


def _expect(value: Any, kind: type | tuple[type, ...], path: str) -> None:
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _kinds(kind)):
        raise ShapeError(path, f"{value!r} is not a {_name(kind)}")


def _kinds(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _name(kind: type | tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in _kinds(kind))
