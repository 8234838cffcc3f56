/**
 * The cosign simple-signing payload, parsed strictly and only after its signature verified
 * (containers/image `signature/simple.go`): unknown keys in `critical` and anywhere in its structure,
 * duplicate keys, wrong types and non-integer timestamps are refused; the one known cosign quirk,
 * `"optional": null`, is tolerated. The parsed fields stay `untrusted…` until
 * {@linkcode acceptSimpleSigning} compares them with what we expect.
 *
 * @module
 */
import { DangerzoneError } from "../../errors.ts";
import type { Digest } from "../../oci/digest.ts";
import { isJsonObject, parseStrictJsonBytes, ShapeReader, StrictJsonError } from "../../strict_json.ts";

/** The `critical.type` of a cosign container image signature. */
export const COSIGN_SIGNATURE_TYPE = "cosign container image signature";

/** A parsed payload; nothing in it is trusted until {@linkcode acceptSimpleSigning} accepts it. */
export interface UntrustedSimpleSigning {
  /** `critical.type`. */
  readonly untrustedType: string;
  /** `critical.image.docker-manifest-digest`. */
  readonly untrustedDockerManifestDigest: string;
  /** `critical.identity.docker-reference`. */
  readonly untrustedDockerReference: string;
  /** `optional.creator`, for display only. */
  readonly untrustedCreator: string | null;
  /** `optional.timestamp` (Unix seconds), for display only. */
  readonly untrustedTimestamp: number | null;
}

/** Named acceptance rules (containers/image `SigstorePayloadAcceptanceRules`); each throws to refuse. */
export interface PayloadAcceptanceRules {
  /** Accepts the signed manifest digest or throws. */
  validateManifestDigest(untrustedDigest: string): void;
  /** Accepts the signed docker-reference or throws. */
  validateReference(untrustedReference: string): void;
}

const RULE = "rule 2 (payload)";

/**
 * Parses the exact payload bytes strictly. Call only after the signature over these bytes verified.
 *
 * @example
 * ```ts
 * import { parseSimpleSigningPayload } from "./simple_signing.ts";
 * const p = parseSimpleSigningPayload(new TextEncoder().encode(
 *   '{"critical":{"identity":{"docker-reference":"r"},"image":{"docker-manifest-digest":"sha256:00"},' +
 *     '"type":"cosign container image signature"},"optional":null}',
 * ));
 * ```
 */
export function parseSimpleSigningPayload(untrustedPayload: Uint8Array): UntrustedSimpleSigning {
  const shape: ShapeReader = new ShapeReader("PAYLOAD_INVALID", `${RULE}: the simple-signing payload`);
  let untrusted: unknown;
  try {
    untrusted = parseStrictJsonBytes(untrustedPayload);
  } catch (err) {
    if (err instanceof StrictJsonError) shape.fail(`is not strict JSON (${err.message})`, err);
    throw err;
  }
  const top = shape.object(untrusted, "the payload", ["critical"], ["optional"]);
  const critical = shape.object(top["critical"], "critical", ["identity", "image", "type"]);
  const identity = shape.object(critical["identity"], "critical.identity", ["docker-reference"]);
  const image = shape.object(critical["image"], "critical.image", ["docker-manifest-digest"]);
  let untrustedCreator: string | null = null;
  let untrustedTimestamp: number | null = null;
  const optional = top["optional"];
  if (optional !== undefined && optional !== null) {
    // Free-form annotations live here; only the members we might display are type-checked.
    if (!isJsonObject(optional)) shape.fail("optional is neither null nor a JSON object");
    const opt = optional;
    if (opt["creator"] !== undefined) untrustedCreator = shape.string(opt["creator"], "optional.creator");
    if (opt["timestamp"] !== undefined) {
      untrustedTimestamp = shape.integer(opt["timestamp"], "optional.timestamp");
    }
  }
  return {
    untrustedType: shape.string(critical["type"], "critical.type"),
    untrustedDockerManifestDigest: shape.string(
      image["docker-manifest-digest"],
      "critical.image.docker-manifest-digest",
    ),
    untrustedDockerReference: shape.string(
      identity["docker-reference"],
      "critical.identity.docker-reference",
    ),
    untrustedCreator,
    untrustedTimestamp,
  };
}

/**
 * Accepts a parsed payload: the type is a cosign container image signature, then the named rules
 * check the digest and the reference. Throws `PAYLOAD_INVALID` or the rule's policy code.
 */
export function acceptSimpleSigning(untrusted: UntrustedSimpleSigning, rules: PayloadAcceptanceRules): void {
  if (untrusted.untrustedType !== COSIGN_SIGNATURE_TYPE) {
    throw new DangerzoneError(
      "PAYLOAD_INVALID",
      `${RULE}: critical.type is "${untrusted.untrustedType.slice(0, 60)}", not "${COSIGN_SIGNATURE_TYPE}"`,
    );
  }
  rules.validateManifestDigest(untrusted.untrustedDockerManifestDigest);
  rules.validateReference(untrusted.untrustedDockerReference);
}

/** Options of {@linkcode expectedPayloadRules}. */
export interface ExpectedPayload {
  /** The manifest digest we computed; the signed one must equal it exactly. */
  digest: Digest;
  /** The repository to enforce; undefined = the signed reference is only reported. */
  reference?: string | undefined;
}

/** The standard rules: exact digest equality, and the reference when one is given. */
export function expectedPayloadRules(expected: ExpectedPayload): PayloadAcceptanceRules {
  const repository = expected.reference === undefined ? undefined : repositoryOf(expected.reference);
  return {
    validateManifestDigest(untrustedDigest: string): void {
      if (untrustedDigest !== expected.digest) {
        throw new DangerzoneError(
          "POLICY_DIGEST_MISMATCH",
          `${RULE}: the signature is for ${untrustedDigest.slice(0, 80)}, not for ${expected.digest}`,
        );
      }
    },
    validateReference(untrustedReference: string): void {
      if (repository !== undefined && untrustedReference !== repository) {
        throw new DangerzoneError(
          "POLICY_REFERENCE_MISMATCH",
          `${RULE}: the signed docker-reference is "${
            untrustedReference.slice(0, 120)
          }", not "${repository}"`,
          { hint: "pass the repository the publisher signed (--reference / --identity) if you use a mirror" },
        );
      }
    },
  };
}

/** The repository of a reference: without `@digest` and without `:tag`. */
export function repositoryOf(reference: string): string {
  const at = reference.indexOf("@");
  const noDigest = at === -1 ? reference : reference.slice(0, at);
  const slash = noDigest.lastIndexOf("/");
  const colon = noDigest.lastIndexOf(":");
  return colon > slash ? noDigest.slice(0, colon) : noDigest;
}
