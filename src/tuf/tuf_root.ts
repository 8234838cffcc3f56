/**
 * A TUF root's facts for display: version, expiry, the root role's threshold and keys. Parsing goes
 * through `@tufjs/models`, the same model `tuf-js` verifies with.
 *
 * @module
 */
import { Metadata, MetadataKind } from "@tufjs/models";
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
 * Parses a TUF root.json (already trusted: the cache or the embedded root) for display.
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
  try {
    const root = Metadata.fromJSON(MetadataKind.Root, JSON.parse(new TextDecoder().decode(bytes)));
    const role = root.signed.roles[MetadataKind.Root];
    return {
      source,
      version: root.signed.version,
      expires: new Date(root.signed.expires).toISOString(),
      expired: root.signed.isExpired(now),
      rootThreshold: role?.threshold ?? 0,
      rootKeys: role?.keyIDs.length ?? 0,
    };
  } catch (cause) {
    throw new DangerzoneError(
      "TUF_VERIFICATION_FAILED",
      `the ${source} TUF root is not a valid TUF root.json`,
      {
        cause,
        hint: "pass a root.json of the TUF repository with --tuf-root",
      },
    );
  }
}
