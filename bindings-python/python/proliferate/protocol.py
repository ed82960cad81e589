"""Decoding wire JSON into the typed values of `proliferate.types`, and encoding requests."""

from __future__ import annotations

import dataclasses
import functools
import json
import types as _builtin_types
import typing
from typing import Any, TypeVar, Union

from . import _native
from . import types as wire

T = TypeVar("T")

_TAGGED = {frozenset(typing.get_args(getattr(wire, name))): tags for name, tags in wire.UNIONS.items()}
_MEMBERS = {cls for tags in wire.UNIONS.values() for cls in tags.values()}


@functools.cache
def _fields(cls: type) -> tuple[dict[str, Any], dict[str, str]]:
    """A dataclass's resolved field types, and its field names by wire name (read once: resolving
    annotations is far slower than decoding a value)."""
    names = {field.name.rstrip("_"): field.name for field in dataclasses.fields(cls)}
    return typing.get_type_hints(cls), names


def decode(annotation: Any, value: Any) -> Any:
    """Builds the typed value for `annotation` (a class of `proliferate.types` or a union) from
    JSON data that the native layer has validated."""
    origin = typing.get_origin(annotation)
    if origin in (Union, _builtin_types.UnionType):
        members = typing.get_args(annotation)
        if value is None and type(None) in members:
            return None
        members = frozenset(member for member in members if member is not type(None))
        if (tags := _TAGGED.get(members)) is not None:
            tag = value.get("type", "")
            cls = tags.get(tag)
            return decode(cls, value) if cls else wire.Unknown(type=tag, raw=value)
        (member,) = members
        return decode(member, value)
    if origin is list:
        (item,) = typing.get_args(annotation)
        return [decode(item, element) for element in value]
    if dataclasses.is_dataclass(annotation):
        hints, names = _fields(annotation)
        arguments = {
            names[key]: decode(hints[names[key]], item)
            for key, item in value.items()
            if key in names and key != "extra"
        }
        if "extra" in names:
            arguments["extra"] = {key: item for key, item in value.items() if key not in names}
        return annotation(**arguments)
    return value


def decode_as(type_name: str, value: Any) -> Any:
    """Validates `value` (JSON data or text) as the named wire type with the Rust protocol types,
    then builds its typed value. Raises `BadRequestError` naming the problem when it is invalid."""
    text = value if isinstance(value, str) else json.dumps(value)
    normalized = json.loads(_native.normalize(type_name, text))
    return decode(getattr(wire, type_name), normalized)


def encode(annotation: Any, value: Any) -> Any:
    """JSON data for a typed value of `annotation`, the inverse of `decode`: absent optional fields
    are left out, `extra` is merged, and the `type` tag is written where a union needs it."""
    if isinstance(value, wire.Unknown):
        return value.raw
    if typing.get_origin(annotation) in (Union, _builtin_types.UnionType):
        members = frozenset(m for m in typing.get_args(annotation) if m is not type(None))
        if members in _TAGGED:
            return {"type": value.type, **encode(type(value), value)}
        return encode(type(value), value) if dataclasses.is_dataclass(value) else value
    if isinstance(value, list):
        (item,) = typing.get_args(annotation) or (Any,)
        return [encode(item, element) for element in value]
    if dataclasses.is_dataclass(value):
        hints, _ = _fields(type(value))
        tagged = type(value) in _MEMBERS
        data: dict[str, Any] = {}
        for field in dataclasses.fields(value):
            item = getattr(value, field.name)
            if field.name == "extra":
                data.update(item)
            elif item is not None and not (tagged and field.name == "type"):
                data[field.name.rstrip("_")] = encode(hints[field.name], item)
        return data
    return value


class TranscriptReducer:
    """Folds events into a transcript exactly as the server does (the Rust reducer)."""

    def __init__(self, session_id: str, transcript: wire.Transcript | None = None):
        resumed = json.dumps(encode(wire.Transcript, transcript)) if transcript is not None else None
        self._native = _native.NativeReducer(session_id, resumed)

    def apply(self, envelope: wire.EventEnvelope) -> bool:
        """Applies one event; False when its seq was already folded."""
        return self._native.apply(json.dumps(encode(wire.EventEnvelope, envelope)))

    @property
    def transcript(self) -> wire.Transcript:
        """The transcript so far."""
        return decode(wire.Transcript, json.loads(self._native.transcript()))
