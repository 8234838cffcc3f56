/**
 * Builds the {@linkcode UpdateContext} from the common options: the image (default
 * `ghcr.io/freedomofpress/dangerzone/v1:latest`), the trusted key (`--pubkey` or the pinned Dangerzone
 * key), the Rekor keyring (`--rekor-key`, `--trusted-root`, `$SIGSTORE_REKOR_PUBLIC_KEY`, or pinned), the
 * bundle trust root, `--identity`, the data directory, the registry client
 * (`--insecure-registry`, `--ca-cert`, `--proxy`, standard credential files) and lazy runtime detection.
 * Private to `src/cli/`.
 *
 * @module
 */
import { parseReference } from "../oci/reference.ts";
import type { RegistryClient, RegistryClientOptions } from "../registry/client.ts";
import { type DetectOptions, detectRuntime } from "../runtime/detect.ts";
import type { ContainerRuntime } from "../runtime/runtime.ts";
import { readFileBounded } from "../read_bounded.ts";
import { loadPublicKeyFile, pinnedPublisherKey } from "../sigstore/keys.ts";
import { loadRekorKeyring } from "../sigstore/rekor_keys.ts";
import type { SigstoreTrustedRoot } from "../sigstore/trusted_root.ts";
import { resolveDataDir } from "../store/data_dir.ts";
import type { UpdateContext } from "../update/context.ts";
import { type CommonOptions, DEFAULT_IMAGE } from "./common.ts";
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
  const local = await buildLocalContext(options, out);
  const registry = await registryClientFrom(options, out);
  return {
    ...local,
    registry,
    [Symbol.dispose](): void {
      registry.close();
    },
  };
}

/** An update context without a registry client, for commands that only read local state. */
export type LocalContext = Omit<UpdateContext, "registry">;

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
  how: { detect?: (options: DetectOptions) => Promise<ContainerRuntime> } = {},
): Promise<LocalContext> {
  const detect = how.detect ?? detectRuntime;
  const image = parseReference(options.image ?? `${DEFAULT_IMAGE}:latest`);
  const publicKey = options.pubkey === undefined
    ? await pinnedPublisherKey()
    : await loadPublicKeyFile(options.pubkey);
  const rekorKeys = await loadRekorKeyring({
    rekorKeyFile: options.rekorKey,
    trustedRootFile: options.trustedRoot,
  });
  const trustedRoot = options.trustedRoot === undefined ? undefined : await trustedRootFrom(options);
  const dataDir = resolveDataDir({ dataDir: options.dataDir });
  let runtime: Promise<ContainerRuntime> | undefined;
  out.debugLine(
    `image ${image.format()}; key sha256:${publicKey.fileSha256 ?? publicKey.spkiSha256}; ` +
      `${rekorKeys.size} Rekor log(s); data dir ${dataDir}`,
  );
  return {
    image,
    publicKey,
    rekorKeys,
    trustedRoot,
    identity: options.identity,
    dataDir,
    runtime(): Promise<ContainerRuntime> {
      runtime ??= detect({
        ...(options.runtime === undefined ? {} : { preferred: options.runtime }),
        ...(options.runtimePath === undefined ? {} : { path: options.runtimePath }),
      });
      return runtime;
    },
    now: () => new Date(),
  };
}

/** The trusted root named by `--trusted-root`, validated, or the embedded production root. */
export async function trustedRootFrom(options: CommonOptions): Promise<SigstoreTrustedRoot> {
  // Loaded on demand: the Sigstore libraries behind trust roots are not needed for key-based signatures.
  const { MAX_TRUSTED_ROOT_BYTES, parseTrustedRoot, productionTrustedRoot } = await import(
    "../sigstore/trusted_root.ts"
  );
  if (options.trustedRoot === undefined) return productionTrustedRoot();
  const bytes = await readFileBounded(options.trustedRoot, {
    limit: MAX_TRUSTED_ROOT_BYTES,
    tooLargeCode: "TRUST_ROOT_INVALID",
    what: "trusted root",
  });
  return parseTrustedRoot(bytes, { source: options.trustedRoot });
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
    ...(out.debug ? { onLog: (line: string) => out.debugLine(line) } : {}),
  };
  return new RegistryClient(registryOptions);
}
