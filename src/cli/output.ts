// deno-lint-ignore-file no-console -- console output is allowed only in main.ts and src/cli/
/**
 * Human and `--json` output. With `--json`, stdout carries exactly one JSON document and human
 * lines go to stderr; without it, human lines go to stdout. Every human line, warning and error line
 * goes through `safeForTerminal()` (untrusted text never reaches the terminal with raw control
 * characters); the JSON document stays exact JSON, with DEL, C1 and bidi controls `\u`-escaped.
 *
 * @module
 */
import { SCHEMA_VERSION } from "../schema_version.ts";
import { escapeJsonForTerminal, safeForTerminal } from "../terminal_text.ts";

/**
 * The one-line form of a failure, safe for a terminal: `error: MESSAGE (HINT)`.
 *
 * @example
 * ```ts
 * import { errorLine } from "./output.ts";
 * errorLine({ message: "no \x1b[2J", hint: undefined }); // "error: no \\x1b[2J"
 * ```
 */
export function errorLine(failure: { readonly message: string; readonly hint?: string | undefined }): string {
  return safeForTerminal(
    `error: ${failure.message}${failure.hint === undefined ? "" : ` (${failure.hint})`}`,
  );
}

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
    const safe = safeForTerminal(text);
    if (this.json) console.error(safe);
    else console.log(safe);
  }

  /** A warning line, always on stderr. */
  warn(text: string): void {
    console.error(safeForTerminal(`warning: ${text}`));
  }

  /** A debug line on stderr, only with `--debug`. */
  debugLine(text: string): void {
    if (this.debug) console.error(safeForTerminal(`debug: ${text}`));
  }

  /**
   * The JSON result document; printed only under `--json`, with `schemaVersion` first: the one place
   * every document (results and the error document alike) gets it (see `schemas/`). Exact JSON, with
   * DEL, C1 and bidi controls written as `\uXXXX` escapes so no terminal acts on them.
   */
  result(document: object): void {
    if (this.json) {
      console.log(
        escapeJsonForTerminal(JSON.stringify({ schemaVersion: SCHEMA_VERSION, ...document }, null, 2)),
      );
    }
  }
}
