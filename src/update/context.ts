/**
 * The update context: everything the update policies (`check`, `store-signatures`, `verify-local`,
 * `upgrade`) share, built once from the command line (see `src/cli/_context.ts`) or by a library user.
 *
 * @module
 */
import type { Reference } from "../oci/reference.ts";
import type { RegistryClient } from "../registry/client.ts";
import type { ContainerRuntime } from "../runtime/runtime.ts";
import type { PublicKey } from "../sigstore/crypto/keys.ts";
import type { RekorKeyring } from "../sigstore/crypto/rekor_keys.ts";
import type { SigstoreTrustedRoot } from "../sigstore/crypto/trusted_root.ts";
import { LogStateStore, PRODUCTION_REKOR_LOG_ID } from "../store/log_state.ts";
import { SignatureStore } from "../store/signature_store.ts";

/** What the update policies work with. */
export interface UpdateContext {
  /** The image reference (`--image`), normally a tag such as `ghcr.io/freedomofpress/dangerzone/v1:latest`. */
  readonly image: Reference;
  /** The trusted publisher key (`--pubkey` or the pinned Dangerzone key). */
  readonly publicKey: PublicKey;
  /** The trusted Rekor logs for key-based signatures. */
  readonly rekorKeys: RekorKeyring;
  /** The Sigstore trusted root for bundles (`--trusted-root`); undefined = the production root. */
  readonly trustedRoot: SigstoreTrustedRoot | undefined;
  /**
   * `--identity`: the signed docker-reference to expect when pulling through a mirror. Undefined = the
   * repository the image is fetched from.
   */
  readonly identity: string | undefined;
  /** The data directory (not created until something is written). */
  readonly dataDir: string;
  /** The registry client; the caller closes it. */
  readonly registry: RegistryClient;
  /** The container runtime, detected on first use (`RUNTIME_NOT_FOUND` when none answers). */
  runtime(): Promise<ContainerRuntime>;
  /** The clock (tests replace it). */
  now(): Date;
}

/**
 * The log that `last_log_index` (the file Dangerzone reads and writes) is about: the only trusted log when
 * exactly one is trusted (e.g. `SIGSTORE_REKOR_PUBLIC_KEY`), else the production Rekor log.
 */
export function legacyLogIdOf(ctx: Pick<UpdateContext, "rekorKeys">): string {
  const ids = ctx.rekorKeys.logIds();
  const [only] = ids;
  return ids.length === 1 && only !== undefined ? only : PRODUCTION_REKOR_LOG_ID;
}

/** The anti-rollback state of the context's data directory, with the right legacy log. */
export function logStateOf(ctx: Pick<UpdateContext, "rekorKeys" | "dataDir">): LogStateStore {
  return new LogStateStore(ctx.dataDir, { legacyLogId: legacyLogIdOf(ctx) });
}

/** The signature store of the context's data directory. */
export function signatureStoreOf(ctx: Pick<UpdateContext, "dataDir">): SignatureStore {
  return new SignatureStore(ctx.dataDir);
}
