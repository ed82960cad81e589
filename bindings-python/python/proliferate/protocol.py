"""Decoding wire JSON into the typed values of `proliferate.types`, and encoding requests."""

from __future__ import annotations

import dataclasses
import functools
import json
import types as _builtin_types
import typing
from collections.abc import Callable
from typing import Any, TypeVar, Union

from . import _native
from . import types as wire

T = TypeVar("T")

_TAGGED = {frozenset(typing.get_args(getattr(wire, name))): tags for name, tags in wire.UNIONS.items()}
_MEMBERS = {cls for tags in wire.UNIONS.values() for cls in tags.values()}


Decoder = Callable[[Any], Any]


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """A dataclass's resolved field types (resolving annotations is slow: once per class)."""
    return typing.get_type_hints(cls)


_DECODERS: dict[Any, Decoder | None] = {}


def _decoder(annotation: Any) -> Decoder | None:
    """The function that builds values of `annotation` from JSON data, made once per type (so
    decoding a value never inspects annotations); None where the JSON value is kept as is."""
    if annotation in _DECODERS:
        return _DECODERS[annotation]
    origin = typing.get_origin(annotation)
    if origin in (Union, _builtin_types.UnionType):
        members = frozenset(m for m in typing.get_args(annotation) if m is not type(None))
        if (tags := _TAGGED.get(members)) is not None:
            decoders: dict[str, Decoder | None] = {}

            def tagged(value: Any) -> Any:
                if value is None:
                    return None
                tag = value.get("type", "")
                if (member := decoders.get(tag)) is None:
                    return wire.Unknown(type=tag, raw=value)
                return member(value)

            _DECODERS[annotation] = tagged
            decoders.update((tag, _decoder(cls)) for tag, cls in tags.items())
            return tagged
        (member,) = members
        inner = _decoder(member)
        optional = None if inner is None else (lambda value: None if value is None else inner(value))
        _DECODERS[annotation] = optional
        return optional
    if origin is list:
        (item,) = typing.get_args(annotation)
        inner = _decoder(item)
        items = None if inner is None else (lambda values: [inner(value) for value in values])
        _DECODERS[annotation] = items
        return items
    if dataclasses.is_dataclass(annotation):
        return _record_decoder(annotation)
    _DECODERS[annotation] = None
    return None


def _record_decoder(cls: type) -> Decoder:
    """The decoder of a dataclass: wire names to fields, unknown names into `extra`. The record
    is filled in place of calling its frozen `__init__` (which sets each field through
    `object.__setattr__`, the most of a decode's time): the values come from Rust types that
    checked every required field, and the defaults are set first."""
    fields: dict[str, tuple[str, Decoder | None]] = {}
    defaults = {
        field.name: field.default
        for field in dataclasses.fields(cls)
        if field.default is not dataclasses.MISSING
    }
    factories = [
        (field.name, field.default_factory)
        for field in dataclasses.fields(cls)
        if field.default_factory is not dataclasses.MISSING and field.name != "extra"
    ]
    keeps_extra = "extra" in {field.name for field in dataclasses.fields(cls)}
    new = object.__new__

    def record(value: dict[str, Any]) -> Any:
        made = new(cls)
        attributes = made.__dict__
        attributes.update(defaults)
        for name, factory in factories:
            attributes[name] = factory()
        extra: dict[str, Any] = {}
        for key, item in value.items():
            if (field := fields.get(key)) is not None:
                name, decode_field = field
                attributes[name] = item if decode_field is None else decode_field(item)
            elif key != "extra":
                extra[key] = item
        if keeps_extra:
            attributes["extra"] = extra
        return made

    _DECODERS[cls] = record
    hints = _hints(cls)
    for field in dataclasses.fields(cls):
        if field.name != "extra":
            fields[field.name.rstrip("_")] = (field.name, _decoder(hints[field.name]))
    return record


def decode(annotation: Any, value: Any) -> Any:
    """Builds the typed value for `annotation` (a class of `proliferate.types` or a union) from
    JSON data that the native layer has validated."""
    decoder = _decoder(annotation)
    return value if decoder is None else decoder(value)


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
        hints = _hints(type(value))
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
