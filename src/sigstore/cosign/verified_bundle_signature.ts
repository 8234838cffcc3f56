/**
 * The verified result type of a cosign v3 bundle signature, apart from the verifier so that code that
 * only handles verified results (the policy, the signature store, the log state) does not load the
 * Sigstore bundle libraries: `verify-local` runs before every document conversion and must stay light.
 * Only `bundle_signature.ts` can create one.
 *
 * @module
 */
import { DangerzoneError } from "../../errors.ts";
import type { Digest } from "../../oci/digest.ts";

/** One verified transparency-log position of a bundle. */
export interface BundleLogEntry {
  /** The log ID (hex) the trusted root declares for the log whose key verified the entry. */
  readonly logId: string;
  /** The log index, as signed (SET) or bound by the Merkle inclusion proof. */
  readonly logIndex: number;
  /** Unix seconds: the SET-signed integration time, or the earliest verified TSA time. */
  readonly integratedTime: number;
  /** Entry kind and version, e.g. `dsse/0.0.1`. */
  readonly kind: string;
}

const TOKEN: unique symbol = Symbol("verified by bundle_signature.ts");
let mintTaken = false;

/**
 * A cosign v3 bundle signature that passed every check. Only `verifyCosignBundleSignature` in
 * `bundle_signature.ts` creates one (module-private token handed out once; the private field makes the
 * type nominal).
 */
class VerifiedBundleSignature {
  readonly #verified = true;
  /** Always `"bundle"`: tells it apart from a key-based legacy signature. */
  readonly kind = "bundle" as const;
  /** The image digest the statement's subject names (equal to the expected one). */
  readonly digest: Digest;
  /** The subject name, when the statement carries one (cosign v3 does not): null = none signed. */
  readonly dockerReference: string | null;
  /** Whether a signed name was enforced against an expected repository. */
  readonly referenceEnforced: boolean;
  /** The first log entry's log ID (hex). */
  readonly logId: string;
  /** The first log entry's index. */
  readonly logIndex: number;
  /** The first log entry's signed time (Unix seconds). */
  readonly integratedTime: number;
  /** Every verified log entry (at least one). */
  readonly logEntries: readonly BundleLogEntry[];
  /** The publisher key's SPKI sha256 (hex). */
  readonly keySpkiSha256: string;
  /** The publisher key file's sha256 (hex), if known: the store folder name. */
  readonly keyFileSha256: string | null;
  /** The bundle media type. */
  readonly mediaType: string;
  /** The exact bundle JSON text, as received. */
  readonly raw: string;

  /** Private to the verifier: needs the module's token. */
  constructor(
    token: typeof TOKEN,
    fields: VerifiedBundleFields,
  ) {
    const first = fields.logEntries[0];
    if (token !== TOKEN || first === undefined) {
      throw new DangerzoneError("INTERNAL", "VerifiedBundleSignature made outside the verifier");
    }
    this.digest = fields.digest;
    this.dockerReference = fields.dockerReference;
    this.referenceEnforced = fields.referenceEnforced;
    this.logEntries = fields.logEntries;
    this.logId = first.logId;
    this.logIndex = first.logIndex;
    this.integratedTime = first.integratedTime;
    this.keySpkiSha256 = fields.keySpkiSha256;
    this.keyFileSha256 = fields.keyFileSha256;
    this.mediaType = fields.mediaType;
    this.raw = fields.raw;
  }

  /** Always true; present so the type cannot be faked structurally. */
  isVerified(): boolean {
    return this.#verified;
  }
}

export type { VerifiedBundleSignature };

/** The fields the verifier sets; the first log entry's position is derived from `logEntries`. */
export type VerifiedBundleFields = Omit<
  VerifiedBundleSignature,
  "isVerified" | "kind" | "logId" | "logIndex" | "integratedTime"
>;

/**
 * Hands the constructor to the bundle verifier (`bundle_signature.ts` calls this once, when it loads);
 * every later call throws, so no other module can create a {@linkcode VerifiedBundleSignature}.
 */
export function takeBundleSignatureMint(): (fields: VerifiedBundleFields) => VerifiedBundleSignature {
  if (mintTaken) throw new DangerzoneError("INTERNAL", "VerifiedBundleSignature mint taken twice");
  mintTaken = true;
  return (fields) => new VerifiedBundleSignature(TOKEN, fields);
}

/** True for a {@linkcode VerifiedBundleSignature} (made by this module), false for anything else. */
export function isVerifiedBundleSignature(value: unknown): value is VerifiedBundleSignature {
  return value instanceof VerifiedBundleSignature;
}
