/**
 * Signature verification: keys, key-based cosign signatures (simple signing, Rekor SET, log-entry
 * binding, policy over several signatures), cosign v3 bundle signatures, and trust: Rekor keys,
 * Sigstore trusted roots, and {@linkcode selectTrust}, the one choice of trust for every signature form.
 *
 * Grouped by trust boundary, as sigstore-js is (bundle / core / verify); a group imports only the
 * groups before it (tests/architecture_test.ts):
 *
 * - `formats/`: untrusted Sigstore formats parsed strictly (bundles, simple signing, RFC 8785, the
 *   protobuf JSON mapping); no trust decision is made here;
 * - `crypto/`: keys, signatures, Rekor SETs, log-entry binding and inclusion proofs, trusted roots and
 *   the trust selection;
 * - `cosign/`: the cosign image-signature policy: discovery of every signature form in a registry,
 *   the stored signature list, legacy and bundle signatures, "at least one verifies";
 * - `provenance/`: keyless SLSA provenance attestations (Fulcio claims, in-toto, SLSA predicates).
 *
 * @module
 */
export {
  type KeyAlgorithm,
  loadPublicKeyFile,
  parsePublicKeyPem,
  pinnedPublisherKey,
  type PublicKey,
  publicKeyFromSpki,
  sameKey,
  verifySignature,
} from "./crypto/keys.ts";
export { canonicalJson } from "./formats/canonical_json.ts";
export {
  decodeCosignSignature,
  type DecodedCosignSignature,
  MAX_PAYLOAD_BYTES,
  MAX_SIGNATURE_LIST_BYTES,
  MAX_SIGNATURES,
  parseSignatureList,
  serializeSignatureList,
  signatureEntryFromLayer,
  type SignatureLayer,
  type UntrustedSignatureEntry,
} from "./cosign/cosign_signature.ts";
export {
  pinnedRekorKeyring,
  type RekorKey,
  RekorKeyring,
  rekorKeysOfTrustedRoot,
  unboundedRekorKey,
} from "./crypto/rekor_keys.ts";
export {
  type KeyDetails,
  MAX_TRUSTED_ROOT_BYTES,
  parseTrustedRoot,
  type PinnedLogKey,
  productionTrustedRoot,
  type SigstoreTrustedRoot,
  type TransparencyLogKey,
  TRUSTED_ROOT_MEDIA_TYPES,
  withRekorKeys,
} from "./crypto/trusted_root.ts";
export {
  loadRekorKeyring,
  type SelectedTrust,
  selectTrust,
  type TrustedRootRule,
  type TrustSelectionOptions,
} from "./crypto/trust_selection.ts";
export {
  acceptSimpleSigning,
  COSIGN_SIGNATURE_TYPE,
  type ExpectedPayload,
  expectedPayloadRules,
  parseSimpleSigningPayload,
  type PayloadAcceptanceRules,
  repositoryOf,
  type UntrustedSimpleSigning,
} from "./formats/simple_signing.ts";
export { type SetVerifiedEntry, type UntrustedTlogEntry, verifySignedEntryTimestamp } from "./crypto/set.ts";
export { type TlogBodyExpectations, verifyTlogBody } from "./crypto/tlog_body.ts";
export {
  type CosignExpectations,
  type CosignTrust,
  type VerifiedCosignSignature,
  verifyCosignSignature,
} from "./cosign/verifier.ts";
export {
  bundleEntryFromBytes,
  type BundleLogEntry,
  type BundleSignatureExpectations,
  type BundleSignatureTrust,
  COSIGN_SIGN_PREDICATE,
  isVerifiedBundleSignature,
  type UntrustedBundleEntry,
  type VerifiedBundleSignature,
  verifyCosignBundleSignature,
} from "./cosign/bundle_signature.ts";
export {
  type LogPosition,
  requireVerified,
  type SignatureResult,
  type SignaturesVerdict,
  type VerifiedImageSignature,
  verifiedLogEntries,
  verifiedLogPositions,
  verifyCosignSignatures,
} from "./cosign/policy.ts";
