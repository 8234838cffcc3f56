/**
 * The version of the machine contract: every `--json` document, error document and NDJSON progress
 * event carries it as `schemaVersion`, and the JSON Schemas in `schemas/` pin it. Raise it only for a
 * change a caller must adapt to (a field removed, renamed or retyped); adding a field keeps it.
 *
 * @module
 */

/** The `schemaVersion` of every JSON document and event this version prints. */
export const SCHEMA_VERSION = 1;
