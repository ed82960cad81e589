"""Every golden fixture decodes (or fails) in Python exactly as the protocol says."""

from __future__ import annotations

import json
import pathlib
import subprocess

import pytest
from conftest import FIXTURES, server_program

import proliferate
from proliferate import types
from proliferate.errors import BadRequestError
from proliferate.protocol import encode

VALID = sorted((FIXTURES / "protocol/v1/valid").glob("*.json"))
INVALID = sorted((FIXTURES / "protocol/v1/invalid").glob("*.json"))


def test_fixtures_are_present() -> None:
    assert len(VALID) >= 50 and len(INVALID) >= 10


@pytest.mark.parametrize("path", VALID, ids=lambda path: path.stem)
def test_valid_fixture_decodes_to_its_typed_value(path) -> None:
    fixture = json.loads(path.read_text())
    value = proliferate.decode_as(fixture["decode_as"], fixture["json"])
    annotation = getattr(types, fixture["decode_as"])
    assert proliferate.decode_as(fixture["decode_as"], encode(annotation, value)) == value, "round trip"
    tag = fixture["json"].get("type") if isinstance(fixture["json"], dict) else None
    union = types.UNIONS.get(fixture["decode_as"])
    if union is not None:
        if tag in union:
            assert isinstance(value, union[tag]) and value.type == tag
        else:
            assert isinstance(value, types.Unknown) and value.raw == fixture["json"]
    else:
        assert type(value) is annotation
    if isinstance(value, types.EventEnvelope):
        event_tag = fixture["json"]["event"]["type"]
        expected = types.EVENT_TYPES.get(event_tag, types.Unknown)
        assert isinstance(value.event, expected) and value.event.type == event_tag


@pytest.mark.parametrize("path", INVALID, ids=lambda path: path.stem)
def test_invalid_fixture_fails_naming_the_problem(path) -> None:
    fixture = json.loads(path.read_text())
    with pytest.raises(BadRequestError) as raised:
        proliferate.decode_as(fixture["decode_as"], fixture["json"])
    assert raised.value.code == "bad_request"
    assert fixture["error_contains"] in str(raised.value)


def test_unknown_type_names_are_refused() -> None:
    with pytest.raises(BadRequestError, match="unknown wire type `Nonsense`"):
        proliferate.decode_as("Nonsense", {})


def test_generated_types_and_errors_match_the_schema() -> None:
    codegen = pathlib.Path(server_program()).with_name("proliferate-codegen")
    checked = subprocess.run([codegen, "--check"], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
