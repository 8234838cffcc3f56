/**
 * The update policies that tie registry, verification, store and runtime together: remote verification
 * (steps 1-2 of `upgrade`), `check`, `store-signatures`, `verify-local` and `upgrade` itself.
 *
 * @module
 */
export * from "./context.ts";
export * from "./verify_remote.ts";
export * from "./check.ts";
export * from "./store_signatures.ts";
export * from "./verify_local.ts";
export * from "./upgrade.ts";
export * from "./progress.ts";
export * from "./disk_space.ts";
// Types the public API refers to, re-exported so its documentation is complete.
export type { Digest } from "../oci/digest.ts";
export type { RawManifest } from "../oci/manifest.ts";
export type { Reference } from "../oci/reference.ts";
export type { RegistryClient } from "../registry/client.ts";
export type { ContainerRuntime, RuntimeName } from "../runtime/runtime.ts";
export type {
  JsonStatement,
  VerifiedBundle,
  VerifiedSigner,
  VerifiedTlogEntry,
} from "../sigstore/crypto/bundle_verifier.ts";
export type { CopyPlan } from "../copy.ts";
export type { DangerzoneError, ErrorCode } from "../errors.ts";
export type { SCHEMA_VERSION } from "../schema_version.ts";
export type { BundleLogEntry, VerifiedBundleSignature } from "../sigstore/cosign/bundle_signature.ts";
export type { DiscoveredBundle, SignatureSource } from "../sigstore/cosign/discovery.ts";
export type { PublicKey } from "../sigstore/crypto/keys.ts";
export type { LogPosition, VerifiedImageSignature } from "../sigstore/cosign/policy.ts";
export type { RekorKeyring } from "../sigstore/crypto/rekor_keys.ts";
export type { KeyDetails, SigstoreTrustedRoot, TransparencyLogKey } from "../sigstore/crypto/trusted_root.ts";
export type { VerifiedCosignSignature } from "../sigstore/cosign/verifier.ts";
export type { LogState, LogStateStore } from "../store/log_state.ts";
export type { SignatureStore } from "../store/signature_store.ts";
