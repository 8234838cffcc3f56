/**
 * The JSON Schemas of `schemas/` loaded into one Ajv (draft 2020-12, strict mode), and an assertion that
 * a real document validates, naming every violation.
 *
 * @module
 */
import { Ajv2020 } from "ajv/dist/2020.js";
import type { ValidateFunction } from "ajv";
import assert from "node:assert/strict";

/** The folder of the schemas. */
export const SCHEMAS_DIR = new URL("../../schemas/", import.meta.url);

/** The `$id` prefix every schema shares. */
export const SCHEMA_ID_BASE = "https://dangerzone.rocks/schemas/dangerzone-image/";

/** The draft every schema declares. */
export const DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema";

/** The shared definitions file (accepts no document by itself). */
export const COMMON_SCHEMA = "common.schema.json";

/** Every `*.json` file name in `schemas/`, sorted. */
export function schemaFiles(): string[] {
  return [...Deno.readDirSync(SCHEMAS_DIR)].filter((e) => e.isFile && e.name.endsWith(".json"))
    .map((e) => e.name).sort();
}

/** Reads one schema file as parsed JSON. */
export function readSchema(file: string): Record<string, unknown> {
  const value: unknown = JSON.parse(Deno.readTextFileSync(new URL(file, SCHEMAS_DIR)));
  assert.ok(typeof value === "object" && value !== null && !Array.isArray(value), `${file}: not an object`);
  return { ...value };
}

/** A strict Ajv holding every schema (any strict-mode problem throws here). */
export function loadSchemas(): Ajv2020 {
  const ajv = new Ajv2020({ strict: true, allErrors: true, allowUnionTypes: true });
  for (const file of schemaFiles()) ajv.addSchema(readSchema(file));
  return ajv;
}

/** Validates documents and records which schema validated what. */
export class ContractValidator {
  readonly #ajv = loadSchemas();
  /** Schema file name -> descriptions of the real outputs it validated. */
  readonly validated = new Map<string, string[]>();

  /** The compiled validator of `file`. */
  validator(file: string): ValidateFunction {
    const validate = this.#ajv.getSchema(`${SCHEMA_ID_BASE}${file}`);
    assert.ok(validate !== undefined, `no schema ${file}`);
    return validate;
  }

  /** Asserts `doc` is valid under `file`; `what` names the output in the coverage record. */
  assertValid(file: string, doc: unknown, what: string): void {
    const validate = this.validator(file);
    const valid = validate(doc);
    assert.ok(
      valid,
      `${what} does not match ${file}: ${JSON.stringify(validate.errors, null, 1)}\n${JSON.stringify(doc)}`,
    );
    this.validated.set(file, [...(this.validated.get(file) ?? []), what]);
  }

  /** Parses a `--json` stdout (exactly one document) and validates it. */
  assertStdout(file: string, stdout: string, what: string): Record<string, unknown> {
    const doc: unknown = JSON.parse(stdout);
    this.assertValid(file, doc, what);
    assert.ok(typeof doc === "object" && doc !== null && !Array.isArray(doc));
    return { ...doc };
  }

  /**
   * Validates every NDJSON event line of a `--json` stderr (lines starting with `{`) against
   * `progress.schema.json` and returns the events.
   */
  assertEvents(stderr: string, what: string): Record<string, unknown>[] {
    const events = stderr.split("\n").filter((l) => l.startsWith("{")).map((l): unknown => JSON.parse(l));
    for (const e of events) this.assertValid("progress.schema.json", e, what);
    return events.map((e) => {
      assert.ok(typeof e === "object" && e !== null);
      return { ...e };
    });
  }
}
