/**
 * A TUF root's facts for display: version, expiry, the root role's threshold and keys. The root read
 * here is already trusted (the embedded one, or one the TUF client verified and cached): this is
 * display, not verification, so it reads the few fields itself and needs no TUF library (which reads
 * the environment when loaded, and `show` must work under narrow permissions).
 *
 * @module
 */
import { DangerzoneError } from "../errors.ts";

/** What `trust-root show` and `update` report about a TUF root. */
export interface TufRootInfo {
  /** Where it is kept: the data directory's cache, a `--tuf-root` file, or the embedded one. */
  source: "data-dir" | "file" | "embedded";
  /** `signed.version`. */
  version: number;
  /** `signed.expires` (ISO 8601). */
  expires: string;
  /** Whether it has expired now (TUF then needs a newer root online before anything else). */
  expired: boolean;
  /** How many root keys must sign the next root. */
  rootThreshold: number;
  /** How many root keys there are. */
  rootKeys: number;
}

/**
 * Reads a trusted TUF root.json's facts for display.
 *
 * @example
 * ```ts
 * import { describeTufRoot } from "./tuf_root.ts";
 * import { EMBEDDED_TUF_ROOT_JSON } from "./_embedded_root.ts";
 * const info = describeTufRoot(new TextEncoder().encode(EMBEDDED_TUF_ROOT_JSON), "embedded");
 * // info.version === 15
 * ```
 */
export function describeTufRoot(
  bytes: Uint8Array,
  source: TufRootInfo["source"],
  now: Date = new Date(),
): TufRootInfo {
  const invalid = (cause?: unknown) =>
    new DangerzoneError("TUF_VERIFICATION_FAILED", `the ${source} TUF root is not a valid TUF root.json`, {
      cause,
      hint: "pass a root.json of the TUF repository with --tuf-root",
    });
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (cause) {
    throw invalid(cause);
  }
  const signed = field(doc, "signed");
  const version = field(signed, "version");
  const expires = field(signed, "expires");
  const role = field(field(signed, "roles"), "root");
  const threshold = field(role, "threshold");
  const keyids = field(role, "keyids");
  const expiry = typeof expires === "string" ? new Date(expires) : new Date(NaN);
  if (
    field(signed, "_type") !== "root" || !Number.isSafeInteger(version) || typeof version !== "number" ||
    version < 1 || Number.isNaN(expiry.getTime()) || typeof threshold !== "number" || !Array.isArray(keyids)
  ) {
    throw invalid();
  }
  return {
    source,
    version,
    expires: expiry.toISOString(),
    expired: expiry.getTime() <= now.getTime(),
    rootThreshold: threshold,
    rootKeys: keyids.length,
  };
}

function field(x: unknown, name: string): unknown {
  return typeof x === "object" && x !== null && !Array.isArray(x)
    ? (x as Record<string, unknown>)[name]
    : undefined;
}
