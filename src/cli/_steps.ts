/**
 * What `upgrade`, `prepare-archive` and `load-archive` have in common on the terminal: how progress is
 * shown, and the lines for the steps they share (load, store, tag, warn).
 *
 * @module
 */
import { createProgress, type Progress, type ProgressMode } from "../update/progress.ts";
import type { Output } from "./output.ts";

/** NDJSON events under `--json`, a bar on a terminal, nothing otherwise (all on stderr). */
export function progressFor(out: Output): Progress {
  const mode: ProgressMode = out.json ? "ndjson" : Deno.stderr.isTerminal() ? "tty" : "none";
  return createProgress({ mode });
}

/** A step the install paths share. */
export type CommonStep =
  | { step: "load"; runtime: string }
  | { step: "stored"; path: string }
  | { step: "tagged"; name: string }
  | { step: "warning"; message: string };

/** Prints a shared step's line. */
export function describeCommonStep(step: CommonStep, out: Output): void {
  switch (step.step) {
    case "load":
      out.line(`loading the verified image into ${step.runtime}`);
      return;
    case "stored":
      out.line(`stored the verified signatures in ${step.path}`);
      return;
    case "tagged":
      out.line(`tagged ${step.name}`);
      return;
    case "warning":
      out.warn(step.message);
      return;
    default: {
      const unreachable: never = step;
      return unreachable;
    }
  }
}
