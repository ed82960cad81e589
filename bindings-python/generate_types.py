"""Generates `python/proliferate/types.py` from the wire schema, `docs/schema/v1.json`.

Run `python generate_types.py` after the schema changes; the test suite fails on drift.
"""

from __future__ import annotations

import json
import keyword
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
SCHEMA = HERE.parent / "docs" / "schema" / "v1.json"
OUTPUT = HERE / "python" / "proliferate" / "types.py"

SCALARS = {"string": "str", "integer": "int", "number": "float", "boolean": "bool"}


def camel(tag: str) -> str:
    return "".join(word.capitalize() for word in tag.split("_"))


def reference(schema: dict) -> str | None:
    ref = schema.get("$ref")
    return ref.rsplit("/", 1)[-1] if ref else None


def annotation(schema: dict) -> str:
    """The Python annotation for a property schema."""
    if name := reference(schema):
        return name
    if "anyOf" in schema:
        members = [m for m in schema["anyOf"] if m.get("type") != "null"]
        inner = " | ".join(annotation(m) for m in members)
        return f"{inner} | None" if len(members) < len(schema["anyOf"]) else inner
    kind = schema.get("type")
    if isinstance(kind, list):
        inner = [k for k in kind if k != "null"]
        text = annotation({**schema, "type": inner[0]}) if len(inner) == 1 else "Any"
        return f"{text} | None" if "null" in kind else text
    if kind == "array":
        return f"list[{annotation(schema.get('items', {}))}]"
    if kind == "object":
        return "dict[str, Any]"
    return SCALARS.get(kind, "Any")


def docstring(text: str, indent: str) -> str:
    text = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    return f'{indent}"""{text}"""\n'


def union_tags(definitions: dict) -> tuple[dict, dict]:
    """Tagged unions: {union: [(tag, class)]}, and the tags each class carries."""
    unions, tags = {}, {}
    for name, schema in definitions.items():
        members = schema.get("oneOf", [])
        if not members or "const" in members[0]:
            continue
        entries = []
        for member in members:
            tag = member["properties"]["type"]["const"]
            target = reference(member) or f"{camel(tag)}{name}"
            entries.append((tag, target))
            tags.setdefault(target, []).append(tag)
        unions[name] = entries
    return unions, tags


def record(name: str, schema: dict, tags: list[str]) -> str:
    properties = dict(schema.get("properties", {}))
    required = set(schema.get("required", []))
    lines = ["@dataclass(frozen=True, kw_only=True)\n", f"class {name}:\n"]
    description = schema.get("description") or (f"A `{tags[0]}` value." if tags else name)
    lines.append(docstring(description, "    "))
    if tags:
        default = f' = "{tags[0]}"' if len(tags) == 1 else ""
        lines.append(f"    type: str{default}\n")
        lines.append(docstring("The `type` tag this value carries on the wire.", "    "))
        properties.pop("type", None)
    for field, spec in properties.items():
        python_name = f"{field}_" if keyword.iskeyword(field) else field
        text = annotation(spec)
        if field in required:
            value = ""
        elif "default" in spec and spec["default"] is not None:
            default = spec["default"]
            value = " = field(default_factory=list)" if default == [] else f" = {default!r}"
        elif text.startswith("list["):
            value = " = field(default_factory=list)"
        else:
            text = text if text.endswith("| None") or text == "Any" else f"{text} | None"
            value = " = None"
        lines.append(f"    {python_name}: {text}{value}\n")
        if "description" in spec:
            lines.append(docstring(spec["description"], "    "))
    if schema.get("additionalProperties") is True:
        lines.append("    extra: dict[str, Any] = field(default_factory=dict)\n")
        lines.append(docstring("Fields this version does not know, kept as sent.", "    "))
    return "".join(lines)


def generate() -> str:
    definitions = json.loads(SCHEMA.read_text())["$defs"]
    unions, tags = union_tags(definitions)
    out = [
        '"""Typed wire values of protocol v1, generated from `docs/schema/v1.json`.\n\n',
        "Do not edit: run `python bindings-python/generate_types.py`.\n",
        '"""\n\nfrom __future__ import annotations\n\n',
        "from dataclasses import dataclass, field\nfrom typing import Any, Literal, Union\n\n",
    ]
    for name, schema in sorted(definitions.items()):
        if name in unions:
            continue
        members = schema.get("oneOf")
        if members:
            values = ", ".join(repr(m["const"]) for m in members)
            out.append(f"{name} = Literal[{values}]\n")
            out.append(docstring(schema.get("description", name), ""))
            out.append("\n\n")
        elif "properties" in schema or name in tags:
            out.append(record(name, schema, tags.get(name, [])) + "\n\n")
        else:
            out.append(f"{name} = {annotation(schema)}\n")
            out.append(docstring(schema.get("description", name), ""))
            out.append("\n\n")
    for union, entries in sorted(unions.items()):
        for tag, target in entries:
            if target not in definitions:
                member = next(
                    m for m in definitions[union]["oneOf"]
                    if m["properties"]["type"]["const"] == tag
                )
                out.append(record(target, member, [tag]) + "\n\n")
    out.append(
        "@dataclass(frozen=True, kw_only=True)\nclass Unknown:\n"
        '    """A member of a tagged union whose `type` this version does not know."""\n'
        "    type: str\n"
        '    """The `type` tag as sent."""\n'
        "    raw: dict[str, Any]\n"
        '    """The whole value as sent."""\n\n\n'
    )
    for union, entries in sorted(unions.items()):
        classes = list(dict.fromkeys(target for _, target in entries))
        out.append(f"{union} = Union[{', '.join(classes)}, Unknown]\n")
        out.append(docstring(definitions[union].get("description", f"One `{union}`, tagged on `type`."), ""))
        out.append(f"{union.upper()}_TYPES: dict[str, type] = {{\n")
        out.extend(f'    "{tag}": {target},\n' for tag, target in entries)
        out.append("}\n")
        out.append(docstring(f"Every `{union}` tag this version knows, and its class.", ""))
        out.append("\n")
    out.append("UNIONS: dict[str, dict[str, type]] = {\n")
    out.extend(f'    "{union}": {union.upper()}_TYPES,\n' for union in sorted(unions))
    out.append("}\n")
    out.append(docstring("Each tagged union by name.", ""))
    return "".join(out)


if __name__ == "__main__":
    OUTPUT.write_text(generate())
    sys.exit(0)
