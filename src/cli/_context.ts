/**
 * Builds the {@linkcode UpdateContext} from the common options: the image (default
 * `ghcr.io/freedomofpress/dangerzone/v1:latest`), the trusted key (`--pubkey` or the pinned Dangerzone
 * key), the Rekor keyring and the bundles' trusted root (both chosen by `selectTrust()` from
 * `--trusted-root`, `--rekor-key` and `$SIGSTORE_REKOR_PUBLIC_KEY`), `--identity`, the data directory,
 * the registry client (`--insecure-registry`, `--ca-cert`, `--proxy`, standard credential files) and
 * lazy runtime detection.
 * Private to `src/cli/`.
 *
 * @module
 */
import { parseReference, type Reference } from "../oci/reference.ts";
import type { RegistryClient, RegistryClientOptions } from "../registry/client.ts";
import { type DetectOptions, detectRuntime } from "../runtime/detect.ts";
import type { ContainerRuntime } from "../runtime/runtime.ts";
import { readFileBounded } from "../read_bounded.ts";
import { loadPublicKeyFile, pinnedPublisherKey } from "../sigstore/crypto/keys.ts";
import { type SelectedTrust, selectTrust } from "../sigstore/crypto/trust_selection.ts";
import type { SigstoreTrustedRoot } from "../sigstore/crypto/trusted_root.ts";
import { resolveDataDir } from "../store/data_dir.ts";
import { storedTrustedRootFile } from "../tuf/stored_trusted_root.ts";
import type { UpdateContext } from "../update/context.ts";
import { type CommonOptions, connectionsOption, deadlineOptions, DEFAULT_IMAGE } from "./common.ts";
import type { Output } from "./output.ts";

/** An update context that owns its registry client: dispose it (`using ctx = ...`). */
export interface CliUpdateContext extends UpdateContext, Disposable {}

/**
 * Builds the context. Nothing is written and no runtime is run until a policy asks for it.
 *
 * @example
 * ```ts ignore
 * using ctx = await buildUpdateContext(options, out);
 * const result = await checkForUpdate(ctx);
 * ```
 */
export async function buildUpdateContext(options: CommonOptions, out: Output): Promise<CliUpdateContext> {
  const { bundleTrustedRoot, ...local } = await buildLocalContext(options, out);
  const trustedRoot = await bundleTrustedRoot();
  const registry = await registryClientFrom(options, out);
  return {
    ...local,
    trustedRoot,
    registry,
    [Symbol.dispose](): void {
      registry.close();
    },
  };
}

/**
 * An update context without a registry client, for commands that only read local state. The bundles'
 * trusted root is built only when asked for (`bundleTrustedRoot()`): parsing the embedded root and
 * checking its certificate chains costs more than the rest of `verify-local`, which needs it only when
 * cosign v3 bundles are stored.
 */
export type LocalContext = Omit<UpdateContext, "registry" | "trustedRoot"> & {
  /** The bundles' trusted root, built on first call; undefined = the production root. */
  bundleTrustedRoot(): Promise<SigstoreTrustedRoot | undefined>;
};

/**
 * Builds everything of the context but the registry client: the trust material, the data directory and
 * lazy runtime detection (`detect` picks the runtime; default {@linkcode detectRuntime}). Loads no
 * registry code and, without `--trusted-root`, no Sigstore bundle library (`verify-local` runs before
 * every document conversion).
 *
 * @example
 * ```ts ignore
 * const ctx = await buildLocalContext(options, out, { detect: selectRuntime });
 * ```
 */
export async function buildLocalContext(
  options: CommonOptions,
  out: Output,
  how: {
    detect?: (options: DetectOptions) => Promise<ContainerRuntime>;
    /** The runtime, when the caller made it already ({@linkcode lazyRuntime}); overrides `detect`. */
    runtime?: () => Promise<ContainerRuntime>;
    /** Chooses the trust (default {@linkcode trustFrom}). */
    trust?: (options: CommonOptions) => Promise<SelectedTrust>;
  } = {},
): Promise<LocalContext> {
  const image = imageFrom(options);
  const publicKey = options.pubkey === undefined
    ? await pinnedPublisherKey()
    : await loadPublicKeyFile(options.pubkey);
  const dataDir = resolveDataDir({ dataDir: options.dataDir });
  const trust = await (how.trust ?? trustFrom)(options);
  const rekorKeys = trust.rekorKeys;
  out.debugLine(
    `image ${image.format()}; key sha256:${publicKey.fileSha256 ?? publicKey.spkiSha256}; ` +
      `${rekorKeys.size} Rekor log(s); data dir ${dataDir}`,
  );
  return {
    image,
    publicKey,
    rekorKeys,
    // The embedded root is left to the bundle verifier, which loads it only when a bundle needs it.
    bundleTrustedRoot: () =>
      trust.trustedRootRule === "default" ? Promise.resolve(undefined) : trust.trustedRoot(),
    identity: options.identity,
    dataDir,
    runtime: how.runtime ?? lazyRuntime(options, how.detect ?? detectRuntime),
    now: () => new Date(),
  };
}

/** The image of `--image`, default `ghcr.io/freedomofpress/dangerzone/v1:latest`. */
export function imageFrom(options: CommonOptions): Reference {
  return parseReference(options.image ?? `${DEFAULT_IMAGE}:latest`);
}

/**
 * The runtime of `--runtime` and `--runtime-path`, found by `detect` on the first call, then the same
 * one.
 */
export function lazyRuntime(
  options: CommonOptions,
  detect: (options: DetectOptions) => Promise<ContainerRuntime>,
): () => Promise<ContainerRuntime> {
  let runtime: Promise<ContainerRuntime> | undefined;
  return () => {
    runtime ??= detect({
      ...(options.runtime === undefined ? {} : { preferred: options.runtime }),
      ...(options.runtimePath === undefined ? {} : { path: options.runtimePath }),
    });
    return runtime;
  };
}

/**
 * The trust of every signature form from `--trusted-root`, `--rekor-key` and
 * `$SIGSTORE_REKOR_PUBLIC_KEY`, and the trusted root `trust-root update` kept in the data directory:
 * {@linkcode selectTrust} documents the order.
 */
export async function trustFrom(options: CommonOptions): Promise<SelectedTrust> {
  return await selectTrust({
    rekorKeyFile: options.rekorKey,
    trustedRootFile: options.trustedRoot,
    storedTrustedRootFile: await storedTrustedRootFile(resolveDataDir({ dataDir: options.dataDir })),
  });
}

/** The bundles' trusted root chosen by {@linkcode trustFrom}. */
export async function trustedRootFrom(options: CommonOptions): Promise<SigstoreTrustedRoot> {
  return await (await trustFrom(options)).trustedRoot();
}

/** A registry client with the transport options of the common flags (`--insecure-registry`, `--ca-cert`, `--proxy`). */
export async function registryClientFrom(options: CommonOptions, out: Output): Promise<RegistryClient> {
  // Loaded on demand: commands that only read local state (verify-local) never load registry code.
  const [{ RegistryClient }, { createCredentialResolver }] = await Promise.all([
    import("../registry/client.ts"),
    import("../registry/credentials.ts"),
  ]);
  const caCerts: string[] = [];
  for (const file of options.caCert ?? []) {
    caCerts.push(
      new TextDecoder().decode(
        await readFileBounded(file, { limit: 1024 * 1024, tooLargeCode: "CONFIG_INVALID", what: "CA file" }),
      ),
    );
  }
  const registryOptions: RegistryClientOptions = {
    insecureRegistries: options.insecureRegistry ?? [],
    caCerts,
    credentials: createCredentialResolver(),
    ...(options.proxy === undefined ? {} : { proxy: options.proxy }),
    ...deadlineOptions(options),
    connections: connectionsOption(options.connections),
    ...(options.torIsolation === undefined ? {} : { torIsolation: options.torIsolation }),
    ...(out.debug ? { onLog: (line: string) => out.debugLine(line) } : {}),
  };
  return new RegistryClient(registryOptions);
}
