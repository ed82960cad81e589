// Generates lib/types.ts from the wire schema, docs/schema/v1.json.
// Run `node generate-types.mjs` after the schema changes; the test suite fails on drift.
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const camel = (tag) => tag.split("_").map((word) => word[0].toUpperCase() + word.slice(1)).join("");
const reference = (schema) => schema.$ref?.split("/").pop();
const doc = (text, indent) => (text ? `${indent}/** ${text.replaceAll("*/", "*\\/")} */\n` : "");

function annotation(schema) {
  const name = reference(schema);
  if (name) return name;
  if (schema.anyOf) return schema.anyOf.map(annotation).join(" | ");
  const kind = schema.type;
  if (Array.isArray(kind)) return kind.map((each) => annotation({ ...schema, type: each })).join(" | ");
  if (kind === "array") return `Array<${annotation(schema.items ?? {})}>`;
  if (kind === "object") return "Record<string, unknown>";
  if (kind === "null") return "null";
  if (kind === "integer" || kind === "number") return "number";
  if (kind === "string" || kind === "boolean") return kind;
  return "unknown";
}

// Frame payloads also travel without their tag (HTTP bodies, connection updates), so their `type`
// is optional; events and transcript parts always carry it.
function record(name, schema, tags, optionalTag = false) {
  let out = doc(schema.description ?? (tags.length ? `A \`${tags[0]}\` value.` : name), "");
  out += `export interface ${name} {\n`;
  if (tags.length) {
    out += doc("The `type` tag this value carries on the wire.", "  ");
    out += `  type${optionalTag ? "?" : ""}: ${tags.map((tag) => JSON.stringify(tag)).join(" | ")};\n`;
  }
  const required = new Set(schema.required ?? []);
  for (const [field, spec] of Object.entries(schema.properties ?? {})) {
    if (tags.length && field === "type") continue;
    out += doc(spec.description, "  ");
    out += `  ${field}${required.has(field) ? "" : "?"}: ${annotation(spec)};\n`;
  }
  if (schema.additionalProperties === true) {
    out += doc("Fields this version does not know, kept as sent.", "  ");
    out += "  [field: string]: unknown;\n";
  }
  return `${out}}\n\n`;
}

export function generate() {
  const definitions = JSON.parse(readFileSync(here("../docs/schema/v1.json"), "utf8")).$defs;
  const unions = {};
  const tags = {};
  const framed = new Set();
  for (const [name, schema] of Object.entries(definitions)) {
    const members = schema.oneOf ?? [];
    if (!members.length || "const" in members[0]) continue;
    unions[name] = members.map((member) => {
      const tag = member.properties.type.const;
      const target = reference(member) ?? `${camel(tag)}${name}`;
      (tags[target] ??= []).push(tag);
      if (name.endsWith("Frame")) framed.add(target);
      return { tag, target, member };
    });
  }
  let out = "// Typed wire values of protocol v1, generated from docs/schema/v1.json.\n";
  out += "// Do not edit: run `node bindings-node/generate-types.mjs`.\n\n";
  for (const name of Object.keys(definitions).sort()) {
    const schema = definitions[name];
    if (unions[name]) continue;
    if (schema.oneOf) {
      out += doc(schema.description, "");
      out += `export type ${name} = ${schema.oneOf.map((member) => JSON.stringify(member.const)).join(" | ")};\n\n`;
    } else if (schema.properties || tags[name]) {
      out += record(name, schema, tags[name] ?? [], framed.has(name));
    } else {
      out += doc(schema.description, "");
      out += `export type ${name} = ${annotation(schema)};\n\n`;
    }
  }
  for (const name of Object.keys(unions).sort()) {
    for (const { tag, target, member } of unions[name]) {
      if (!definitions[target]) out += record(target, member, [tag], framed.has(target));
    }
  }
  for (const name of Object.keys(unions).sort()) {
    const classes = [...new Set(unions[name].map(({ target }) => target))];
    out += doc(definitions[name].description ?? `One \`${name}\`, tagged on \`type\`. Newer servers may send types this version does not know.`, "");
    out += `export type ${name} = ${classes.join(" | ")};\n\n`;
    out += doc(`Every \`${name}\` tag this version knows.`, "");
    out += `export const ${name[0].toLowerCase()}${name.slice(1)}Types = ${JSON.stringify(unions[name].map(({ tag }) => tag))} as const;\n\n`;
  }
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(here("lib/types.ts"), generate());
}
