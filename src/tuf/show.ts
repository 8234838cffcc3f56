/**
 * `trust-root show`: which TUF root and which Sigstore trusted root are in use, and what the trusted
 * root holds (transparency logs and CT logs with their validity windows, certificate and timestamp
 * authorities). Reads only local files; never contacts the network.
 *
 * @module
 */
import { toHex } from "../oci/digest.ts";
import { readFileBounded } from "../read_bounded.ts";
import {
  describeLogKeys,
  MAX_TRUSTED_ROOT_BYTES,
  parseTrustedRoot,
  productionTrustedRoot,
  type SigstoreTrustedRoot,
} from "../sigstore/crypto/trusted_root.ts";
import { PRODUCTION_TRUSTED_ROOT_JSON } from "../sigstore/crypto/_production_trusted_root.ts";
import { EMBEDDED_TUF_ROOT_JSON } from "./_embedded_root.ts";
import {
  DEFAULT_TUF_URL,
  readTrustedRootOrigin,
  storedTrustedRootFile,
  tufCacheDir,
} from "./stored_trusted_root.ts";
import { describeTufRoot, type TufRootInfo } from "./tuf_root.ts";

/** Options of {@linkcode trustRootStatus}. */
export interface TrustRootStatusOptions {
  /** `--trusted-root FILE`, which takes precedence over everything else. */
  trustedRootFile?: string | undefined;
  /** The clock (default now). */
  now?: Date | undefined;
}

/** A certificate or timestamp authority, for display. */
export interface AuthorityInfo {
  /** `subject.organization` / `subject.commonName`. */
  subject: string;
  /** The authority's URI. */
  uri: string;
  /** Certificates in its chain. */
  certificates: number;
  /** Validity window (ISO 8601; `validUntil` null = open). */
  validFrom: string | null;
  /** End of validity, or null while it still issues. */
  validUntil: string | null;
}

/** One transparency or CT log of the trusted root, as `show` describes it. */
export interface LogKeyInfo {
  /** The log's base URL. */
  baseUrl: string;
  /** Hex sha256 of the key's SubjectPublicKeyInfo DER. */
  logId: string;
  /** The key's algorithm, as the trusted root names it. */
  keyDetails: string;
  /** Start of the validity window (ISO 8601). */
  validFrom: string;
  /** End of the validity window, or null while open. */
  validUntil: string | null;
}

/** The `trust-root show --json` document (schemas/trust-root-show.schema.json). */
export interface TrustRootStatus {
  /** The contract version (`Output.result()` prints it). */
  schemaVersion: 1;
  /** Always true in a success document. */
  ok: true;
  /** The TUF root `trust-root update` would start from. */
  tufRoot: TufRootInfo & { repository: string; path: string | null };
  /** The trusted root verification uses. */
  trustedRoot: {
    source: "flag" | "data-dir" | "embedded";
    path: string | null;
    sha256: string;
    mediaType: string;
    /** The TUF repository it came from and when, for a stored one. */
    origin: { tufUrl: string; tufRootVersion: number; updatedAt: string } | null;
  };
  /** The Rekor logs trusted for signatures and bundles. */
  tlogs: LogKeyInfo[];
  /** The certificate transparency logs trusted for Fulcio certificates. */
  ctlogs: LogKeyInfo[];
  /** The Fulcio certificate authorities. */
  certificateAuthorities: AuthorityInfo[];
  /** The RFC 3161 timestamp authorities. */
  timestampAuthorities: AuthorityInfo[];
}

/**
 * What is in use, from local files only.
 *
 * @example
 * ```ts ignore
 * const status = await trustRootStatus("/home/u/.local/share/dangerzone");
 * console.log(status.trustedRoot.source, status.tlogs.length);
 * ```
 */
export async function trustRootStatus(
  dataDir: string,
  options: TrustRootStatusOptions = {},
): Promise<TrustRootStatus> {
  const now = options.now ?? new Date();
  const origin = await readTrustedRootOrigin(dataDir);
  const repository = new URL(origin?.tufUrl ?? DEFAULT_TUF_URL);
  const cachedRootPath = `${tufCacheDir(dataDir, repository)}/root.json`;
  let tufRoot: TrustRootStatus["tufRoot"];
  try {
    const bytes = await Deno.readFile(cachedRootPath);
    tufRoot = {
      ...describeTufRoot(bytes, "data-dir", now),
      repository: repository.href,
      path: cachedRootPath,
    };
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    const embedded = new TextEncoder().encode(EMBEDDED_TUF_ROOT_JSON);
    tufRoot = { ...describeTufRoot(embedded, "embedded", now), repository: DEFAULT_TUF_URL, path: null };
  }

  let source: TrustRootStatus["trustedRoot"]["source"];
  let path: string | null = null;
  let bytes: Uint8Array;
  let root: SigstoreTrustedRoot;
  const stored = options.trustedRootFile === undefined ? await storedTrustedRootFile(dataDir) : undefined;
  const file = options.trustedRootFile ?? stored;
  if (file !== undefined) {
    source = options.trustedRootFile !== undefined ? "flag" : "data-dir";
    path = file;
    bytes = await readFileBounded(file, {
      limit: MAX_TRUSTED_ROOT_BYTES,
      tooLargeCode: "TRUST_ROOT_INVALID",
      what: "trusted root",
    });
    root = parseTrustedRoot(bytes, { source: file });
  } else {
    source = "embedded";
    bytes = new TextEncoder().encode(PRODUCTION_TRUSTED_ROOT_JSON);
    root = productionTrustedRoot();
  }
  return {
    schemaVersion: 1,
    ok: true,
    tufRoot,
    trustedRoot: {
      source,
      path,
      sha256: toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", new Uint8Array(bytes)))),
      mediaType: root.mediaType,
      origin: source === "data-dir" ? origin ?? null : null,
    },
    tlogs: describeLogKeys(root.rekorLogs),
    ctlogs: describeLogKeys(root.ctLogs),
    certificateAuthorities: root.protobuf.certificateAuthorities.map(authorityInfo),
    timestampAuthorities: root.protobuf.timestampAuthorities.map(authorityInfo),
  };
}

function authorityInfo(
  ca: SigstoreTrustedRoot["protobuf"]["certificateAuthorities"][number],
): AuthorityInfo {
  const subject = [ca.subject?.organization, ca.subject?.commonName].filter((s) =>
    s !== undefined && s !== ""
  );
  return {
    subject: subject.join(" / "),
    uri: ca.uri,
    certificates: ca.certChain?.certificates.length ?? 0,
    validFrom: ca.validFor?.start?.toISOString() ?? null,
    validUntil: ca.validFor?.end?.toISOString() ?? null,
  };
}
