/**
 * Signature verification: keys, key-based cosign signatures (simple signing, Rekor SET, log-entry
 * binding, policy over several signatures), cosign v3 bundle signatures, and trust: Rekor keys,
 * Sigstore trusted roots, and {@linkcode selectTrust}, the one choice of trust for every signature form.
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
} from "./keys.ts";
export { canonicalJson } from "./canonical_json.ts";
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
} from "./cosign_signature.ts";
export {
  pinnedRekorKeyring,
  type RekorKey,
  RekorKeyring,
  rekorKeysOfTrustedRoot,
  unboundedRekorKey,
} from "./rekor_keys.ts";
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
} from "./trusted_root.ts";
export {
  loadRekorKeyring,
  type SelectedTrust,
  selectTrust,
  type TrustedRootRule,
  type TrustSelectionOptions,
} from "./trust_selection.ts";
export {
  acceptSimpleSigning,
  COSIGN_SIGNATURE_TYPE,
  type ExpectedPayload,
  expectedPayloadRules,
  parseSimpleSigningPayload,
  type PayloadAcceptanceRules,
  repositoryOf,
  type UntrustedSimpleSigning,
} from "./simple_signing.ts";
export { type SetVerifiedEntry, type UntrustedTlogEntry, verifySignedEntryTimestamp } from "./set.ts";
export { type TlogBodyExpectations, verifyTlogBody } from "./tlog_body.ts";
export {
  type CosignExpectations,
  type CosignTrust,
  type VerifiedCosignSignature,
  verifyCosignSignature,
} from "./verifier.ts";
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
} from "./bundle_signature.ts";
export {
  type LogPosition,
  requireVerified,
  type SignatureResult,
  type SignaturesVerdict,
  type VerifiedImageSignature,
  verifiedLogEntries,
  verifiedLogPositions,
  verifyCosignSignatures,
} from "./policy.ts";
