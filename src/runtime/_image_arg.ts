/**
 * Checks an image argument before it goes on a runtime's command line. Private to `src/runtime/`.
 *
 * @module
 */
import { DangerzoneError } from "../errors.ts";

/**
 * Returns `ref` when it is safe as a positional argument: not empty, at most 512 characters, no leading `-`
 * (it would read as an option), no whitespace or control characters. Else `REFERENCE_INVALID`.
 */
export function imageArg(ref: string): string {
  // deno-lint-ignore no-control-regex
  if (ref === "" || ref.length > 512 || ref.startsWith("-") || /[\s\u0000-\u001f\u007f]/.test(ref)) {
    throw new DangerzoneError("REFERENCE_INVALID", `invalid image reference '${printable(ref)}'`, {
      hint: "use a name like registry/repo:tag, repo@sha256:<hex>, or an image ID",
    });
  }
  return ref;
}

function printable(ref: string): string {
  // deno-lint-ignore no-control-regex
  const shown = ref.replace(/[\u0000-\u001f\u007f]/g, "?");
  return shown.length > 80 ? `${shown.slice(0, 80)}…` : shown;
}
