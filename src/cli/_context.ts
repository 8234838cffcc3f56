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
import { createCredentialResolver } from "../registry/credentials.ts";
import { RegistryClient, type RegistryClientOptions } from "../registry/client.ts";
import { detectRuntime } from "../runtime/detect.ts";
import type { ContainerRuntime } from "../runtime/runtime.ts";
import { readFileBounded } from "../read_bounded.ts";
import { loadPublicKeyFile, pinnedPublisherKey } from "../sigstore/keys.ts";
import { loadRekorKeyring } from "../sigstore/rekor_keys.ts";
import {
  MAX_TRUSTED_ROOT_BYTES,
  parseTrustedRoot,
  productionTrustedRoot,
  type SigstoreTrustedRoot,
} from "../sigstore/trusted_root.ts";
import { resolveDataDir } from "../store/data_dir.ts";
import type { UpdateContext } from "../update/context.ts";
import { type CommonOptions, connectionsOption, DEFAULT_IMAGE } from "./common.ts";
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
  const image = parseReference(options.image ?? `${DEFAULT_IMAGE}:latest`);
  const publicKey = options.pubkey === undefined
    ? await pinnedPublisherKey()
    : await loadPublicKeyFile(options.pubkey);
  const rekorKeys = await loadRekorKeyring({
    rekorKeyFile: options.rekorKey,
    trustedRootFile: options.trustedRoot,
  });
  const trustedRoot = options.trustedRoot === undefined ? undefined : await trustedRootFrom(options);
  const registry = await registryClientFrom(options, out);
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
    registry,
    runtime(): Promise<ContainerRuntime> {
      runtime ??= detectRuntime({
        ...(options.runtime === undefined ? {} : { preferred: options.runtime }),
        ...(options.runtimePath === undefined ? {} : { path: options.runtimePath }),
      });
      return runtime;
    },
    now: () => new Date(),
    [Symbol.dispose](): void {
      registry.close();
    },
  };
}

/** The trusted root named by `--trusted-root`, validated, or the embedded production root. */
export async function trustedRootFrom(options: CommonOptions): Promise<SigstoreTrustedRoot> {
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
    connections: connectionsOption(options.connections),
    ...(options.torIsolation === undefined ? {} : { torIsolation: options.torIsolation }),
    ...(out.debug ? { onLog: (line: string) => out.debugLine(line) } : {}),
  };
  return new RegistryClient(registryOptions);
}
