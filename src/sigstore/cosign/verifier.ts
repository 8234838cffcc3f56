/**
 * The verification pipeline for key-based cosign signatures, one visible sequence of steps (DESIGN
 * rules 2-4, 7, 8):
 *
 * 1. decode the entry strictly, within bounds (`cosign_signature.ts`);
 * 2. the signature over the exact payload bytes, with the trusted key (`keys.ts`);
 * 3. only then parse the payload strictly and accept its type, digest and reference (`simple_signing.ts`);
 * 4. require a transparency-log proof and verify its SET with the log's key (`set.ts`);
 * 5. bind the log entry to this signature, key and payload (`tlog_body.ts`).
 *
 * Any exception is a verification failure with a code; nothing fails open. A
 * {@linkcode VerifiedCosignSignature} can only be made here.
 *
 * @module
 */
import { DangerzoneError } from "../../errors.ts";
import type { Digest } from "../../oci/digest.ts";
import { toHex } from "../../oci/digest.ts";
import {
  decodeCosignSignature,
  type DecodedCosignSignature,
  type UntrustedSignatureEntry,
} from "./cosign_signature.ts";
import { keyDisplayName, type PublicKey, verifySignature } from "../crypto/keys.ts";
import type { RekorKeyring } from "../crypto/rekor_keys.ts";
import { verifySignedEntryTimestamp } from "../crypto/set.ts";
import {
  acceptSimpleSigning,
  expectedPayloadRules,
  parseSimpleSigningPayload,
} from "../formats/simple_signing.ts";
import { verifyTlogBody } from "../crypto/tlog_body.ts";

/** What we trust: the publisher key and the Rekor logs. */
export interface CosignTrust {
  /** The trusted publisher key. */
  publicKey: PublicKey;
  /** The trusted Rekor log keys. */
  rekorKeys: RekorKeyring;
}

/** What the signature must say. */
export interface CosignExpectations {
  /** The manifest digest we computed. */
  digest: Digest;
  /** The repository to enforce; undefined = the signed docker-reference is only reported. */
  reference?: string | undefined;
}

const TOKEN: unique symbol = Symbol("verified by verifier.ts");

/**
 * A signature that passed every check. Only {@linkcode verifyCosignSignature} creates one (the
 * constructor needs a module-private token, and the private field makes the type nominal).
 */
class VerifiedCosignSignature {
  readonly #verified = true;
  /** The image digest the signature covers (equal to the expected one). */
  readonly digest: Digest;
  /** The signed docker-reference. */
  readonly dockerReference: string;
  /** Whether the reference was enforced (true) or only reported (false). */
  readonly referenceEnforced: boolean;
  /** The Rekor log ID (hex) whose SET verified. */
  readonly logId: string;
  /** The log index that log signed. */
  readonly logIndex: number;
  /** The integration time (Unix seconds) that log signed. */
  readonly integratedTime: number;
  /** The publisher key's SPKI sha256 (hex). */
  readonly keySpkiSha256: string;
  /** The publisher key file's sha256 (hex), if known: the store folder name. */
  readonly keyFileSha256: string | null;
  /** The entry's exact JSON text, as received. */
  readonly raw: string;

  /** @ignore Only the verifier constructs one (it holds the token). */
  constructor(token: typeof TOKEN, fields: Omit<VerifiedCosignSignature, "isVerified">) {
    if (token !== TOKEN) {
      throw new DangerzoneError("INTERNAL", "VerifiedCosignSignature made outside the verifier");
    }
    this.digest = fields.digest;
    this.dockerReference = fields.dockerReference;
    this.referenceEnforced = fields.referenceEnforced;
    this.logId = fields.logId;
    this.logIndex = fields.logIndex;
    this.integratedTime = fields.integratedTime;
    this.keySpkiSha256 = fields.keySpkiSha256;
    this.keyFileSha256 = fields.keyFileSha256;
    this.raw = fields.raw;
  }

  /** Always true; present so the type cannot be faked structurally. */
  isVerified(): boolean {
    return this.#verified;
  }
}

export type { VerifiedCosignSignature };

/**
 * Verifies one `cosign download signature` entry against the trust and the expectations, or throws a
 * {@linkcode DangerzoneError} whose message names the rule that failed.
 *
 * @example
 * ```ts ignore
 * const verified = await verifyCosignSignature(entry, { publicKey, rekorKeys }, { digest });
 * console.log(verified.logIndex);
 * ```
 */
export async function verifyCosignSignature(
  entry: UntrustedSignatureEntry,
  trust: CosignTrust,
  expected: CosignExpectations,
): Promise<VerifiedCosignSignature> {
  try {
    return await pipeline(entry, trust, expected);
  } catch (err) {
    if (err instanceof DangerzoneError) throw err;
    // Never fail open: an unexpected exception on hostile input is a verification failure.
    throw new DangerzoneError(
      "SIGNATURE_INVALID",
      `rule 8 (no fail-open): verification stopped on malformed input (${String(err).slice(0, 120)})`,
      { cause: err },
    );
  }
}

async function pipeline(
  entry: UntrustedSignatureEntry,
  trust: CosignTrust,
  expected: CosignExpectations,
): Promise<VerifiedCosignSignature> {
  // 1. Shape and bounds.
  const decoded: DecodedCosignSignature = decodeCosignSignature(entry);

  // 2. The signature over the exact payload bytes.
  if (!await verifySignature(trust.publicKey, decoded.untrustedSignature, decoded.untrustedPayload)) {
    throw new DangerzoneError(
      "SIGNATURE_INVALID",
      `rule 2 (signature): the signature does not verify over the payload with the trusted ${
        keyDisplayName(trust.publicKey)
      }`,
      { hint: "the image was not signed by this key, or the signature was altered" },
    );
  }

  // 3. Parse the now-authenticated payload strictly, then accept type, digest and reference.
  const payload = parseSimpleSigningPayload(decoded.untrustedPayload);
  acceptSimpleSigning(payload, expectedPayloadRules(expected));

  // 4. A transparency-log proof is required; its SET must verify with a trusted log key.
  if (decoded.untrustedTlogEntry === null) {
    throw new DangerzoneError(
      "TLOG_MISSING",
      "rule 3 (Rekor SET): the signature has no transparency-log proof (Bundle is null); refused",
      { hint: "sign with a Rekor upload (cosign's default)" },
    );
  }
  const logged = await verifySignedEntryTimestamp(decoded.untrustedTlogEntry, trust.rekorKeys);

  // 5. Bind the logged entry to this signature, key and payload.
  const payloadSha256 = toHex(
    new Uint8Array(
      await crypto.subtle.digest("SHA-256", decoded.untrustedPayload as Uint8Array<ArrayBuffer>),
    ),
  );
  verifyTlogBody(logged.body, {
    signature: decoded.untrustedSignature,
    publicKey: trust.publicKey,
    payloadSha256,
  });

  return new VerifiedCosignSignature(TOKEN, {
    digest: expected.digest,
    dockerReference: payload.untrustedDockerReference,
    referenceEnforced: expected.reference !== undefined,
    logId: logged.logId,
    logIndex: logged.logIndex,
    integratedTime: logged.integratedTime,
    keySpkiSha256: trust.publicKey.spkiSha256,
    keyFileSha256: trust.publicKey.fileSha256,
    raw: entry.raw,
  });
}
