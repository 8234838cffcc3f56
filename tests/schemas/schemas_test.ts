/**
 * The schemas themselves: each compiles in Ajv's strict mode, follows the conventions (draft 2020-12,
 * `$id` under the project's base, a title and description on every property, `schemaVersion` required
 * and pinned to {@linkcode SCHEMA_VERSION}), refuses an empty document and a renamed field, and the error
 * codes they list are exactly those of `src/errors.ts`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { SCHEMA_VERSION } from "../../src/schema_version.ts";
import {
  COMMON_SCHEMA,
  ContractValidator,
  DRAFT_2020_12,
  loadSchemas,
  readSchema,
  SCHEMA_ID_BASE,
  schemaFiles,
} from "./_schemas.ts";

Deno.test("schemas/ compile in Ajv strict mode and name themselves by $id", () => {
  const ajv = loadSchemas();
  for (const file of schemaFiles()) {
    const schema = readSchema(file);
    assert.equal(schema["$schema"], DRAFT_2020_12, file);
    assert.equal(schema["$id"], `${SCHEMA_ID_BASE}${file}`, file);
    assert.equal(typeof schema["title"], "string", file);
    assert.equal(typeof schema["description"], "string", file);
    assert.ok(file.endsWith(".schema.json"), file);
    assert.ok(ajv.getSchema(`${SCHEMA_ID_BASE}${file}`) !== undefined, file);
  }
});

Deno.test("every schema refuses an empty document", () => {
  const v = new ContractValidator();
  for (const file of schemaFiles()) assert.equal(v.validator(file)({}), false, `${file} accepts {}`);
});

/** Every `properties` map in a schema, with its JSON pointer and its object's `required` list. */
function propertyMaps(node: unknown, at = ""): [string, Record<string, unknown>, unknown[]][] {
  if (typeof node !== "object" || node === null) return [];
  const found: [string, Record<string, unknown>, unknown[]][] = [];
  const required: unknown = Reflect.get(node, "required");
  for (const [key, value] of Object.entries(node)) {
    if (key === "properties" && typeof value === "object" && value !== null) {
      found.push([at, { ...value }, Array.isArray(required) ? required : []]);
    }
    found.push(...propertyMaps(value, `${at}/${key}`));
  }
  return found;
}

Deno.test("every property has a title and a description, and is required (documents print null, never omit)", () => {
  for (const file of schemaFiles()) {
    const maps = propertyMaps(readSchema(file));
    assert.ok(maps.length > 0, `${file} describes no property`);
    for (const [at, props, required] of maps) {
      assert.deepEqual([...required].sort(), Object.keys(props).sort(), `${file}${at}: required`);
      for (const [name, prop] of Object.entries(props)) {
        assert.equal(typeof Reflect.get(Object(prop), "title"), "string", `${file}${at}/${name}: no title`);
        assert.equal(
          typeof Reflect.get(Object(prop), "description"),
          "string",
          `${file}${at}/${name}: no description`,
        );
      }
    }
  }
});

Deno.test("every document schema requires schemaVersion, pinned to the version the code prints", () => {
  const v = new ContractValidator();
  for (const file of schemaFiles().filter((f) => f !== COMMON_SCHEMA)) {
    const schema = readSchema(file);
    const variants = Array.isArray(schema["oneOf"]) ? schema["oneOf"] : [schema];
    for (const variant of variants) {
      const required: unknown = Reflect.get(Object(variant), "required");
      assert.ok(Array.isArray(required) && required.includes("schemaVersion"), `${file}: schemaVersion`);
      assert.equal(Reflect.get(Object(variant), "additionalProperties"), false, `${file}: not closed`);
    }
  }
  const version = v.validator(COMMON_SCHEMA).schema;
  const pinned = Reflect.get(
    Object(Reflect.get(Object(Reflect.get(Object(version), "$defs")), "schemaVersion")),
    "const",
  );
  assert.equal(pinned, SCHEMA_VERSION);
});

Deno.test("error.schema.json refuses a renamed field, an unknown code and a missing hint", () => {
  const v = new ContractValidator();
  const good = {
    schemaVersion: 1,
    ok: false,
    error: { code: "ROLLBACK", message: "rollback refused", hint: null },
  };
  assert.equal(v.validator("error.schema.json")(good), true);
  const bad: unknown[] = [
    { ...good, schemaVersion: 2 },
    { ...good, ok: true },
    { schemaVersion: 1, ok: false, err: good.error },
    { ...good, error: { ...good.error, code: "NOPE" } },
    { ...good, error: { code: "ROLLBACK", message: "x" } },
    { ...good, error: { ...good.error, extra: 1 } },
  ];
  for (const doc of bad) assert.equal(v.validator("error.schema.json")(doc), false, JSON.stringify(doc));
});

/** The `ErrorCode` union of src/errors.ts, read from its source text. */
function errorCodesOfSource(): string[] {
  const text = Deno.readTextFileSync(new URL("../../src/errors.ts", import.meta.url));
  const start = text.indexOf("export type ErrorCode =");
  const union = text.slice(start, text.indexOf(";", start));
  return [...union.matchAll(/"([A-Z_]+)"/g)].map((m) => m[1] ?? "").sort();
}

Deno.test("common.schema.json lists exactly the error codes of src/errors.ts", () => {
  const defs = Reflect.get(Object(readSchema(COMMON_SCHEMA)["$defs"]), "errorCode");
  const listed: unknown = Reflect.get(Object(defs), "enum");
  assert.ok(Array.isArray(listed));
  const source = errorCodesOfSource();
  assert.ok(source.length > 40, "the ErrorCode union was not found");
  assert.deepEqual([...listed].sort(), source, "add the new code to common.schema.json#/$defs/errorCode");
});
