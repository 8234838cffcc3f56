// deno-lint-ignore-file no-console -- console output is allowed only in main.ts and src/cli/
/**
 * Human and `--json` output. With `--json`, stdout carries exactly one JSON document and human
 * lines go to stderr; without it, human lines go to stdout.
 *
 * @module
 */
import { SCHEMA_VERSION } from "../schema_version.ts";

/** Writes the results of one command run. */
export class Output {
  /** Whether `--json` was given. */
  readonly json: boolean;
  /** Whether `--debug` was given. */
  readonly debug: boolean;

  /** Creates an output for one run. */
  constructor(options: { json?: boolean | undefined; debug?: boolean | undefined }) {
    this.json = options.json === true;
    this.debug = options.debug === true;
  }

  /** A human progress or result line: stdout normally, stderr under `--json`. */
  line(text: string): void {
    if (this.json) console.error(text);
    else console.log(text);
  }

  /** A warning line, always on stderr. */
  warn(text: string): void {
    console.error(`warning: ${text}`);
  }

  /** A debug line on stderr, only with `--debug`. */
  debugLine(text: string): void {
    if (this.debug) console.error(`debug: ${text}`);
  }

  /**
   * The JSON result document; printed only under `--json`, with `schemaVersion` first: the one place
   * every document (results and the error document alike) gets it (see `schemas/`).
   */
  result(document: object): void {
    if (this.json) console.log(JSON.stringify({ schemaVersion: SCHEMA_VERSION, ...document }, null, 2));
  }
}
