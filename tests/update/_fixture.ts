/**
 * A real registry (CNCF distribution) with test images and cosign-format signatures made by
 * `tests/_helpers/cosign_signer.ts`, plus the key files and options the CLI and the library need.
 *
 * @module
 */
import { join } from "node:path";
import { type Digest, parseDigest } from "../../src/oci/digest.ts";
import { parseReference, type Reference } from "../../src/oci/reference.ts";
import { createCredentialResolver } from "../../src/registry/credentials.ts";
import { RegistryClient, type RegistryClientOptions } from "../../src/registry/client.ts";
import { parsePublicKeyPem } from "../../src/sigstore/crypto/keys.ts";
import { RekorKeyring } from "../../src/sigstore/crypto/rekor_keys.ts";
import type { ContainerRuntime } from "../../src/runtime/runtime.ts";
import type { UpdateContext } from "../../src/update/context.ts";
import {
  createTestKey,
  type SignatureManifest,
  signatureManifest,
  type SignedImage,
  signImage,
  type TestKey,
} from "../_helpers/cosign_signer.ts";
import { buildBusyboxImage, type BuiltImage, type BuiltIndex, pushImage } from "../_helpers/images.ts";
import { makeTempDir, type TempDir } from "../_helpers/process.ts";
import { type RegistryMode, type RunningRegistry, startRegistry } from "../_helpers/registry.ts";

/** A registry with signing keys. */
export interface SignedRegistry extends AsyncDisposable {
  reg: RunningRegistry;
  dir: string;
  publisher: TestKey;
  rekor: TestKey;
  pubkeyFile: string;
  rekorKeyFile: string;
  /** Client options of a logged-in user (CA, credentials). */
  clientOptions: RegistryClientOptions;
  /** Environment for the CLI (credentials file). */
  env: Record<string, string>;
  /** Builds a busybox image with `text` and pushes it to `repository:tag`. */
  pushBusybox(repository: string, tag: string, text: string): Promise<BuiltImage>;
  /** Pushes a built image or index. */
  push(image: BuiltImage | BuiltIndex, repository: string, tag: string): Promise<Digest>;
  /** Signs `digest` and pushes the `.sig` manifest to `repository` (replacing an earlier one). */
  sign(digest: string, options: SignOptions): Promise<SignedImage[]>;
  /** Pushes an arbitrary signature manifest (e.g. tampered) to `repository`. */
  pushSignatureManifest(repository: string, sig: SignatureManifest): Promise<void>;
  /** Common CLI arguments: image, keys, data dir, CA. */
  cliArgs(image: string, dataDir: string): string[];
  /** An update context for library tests. */
  context(
    image: string,
    dataDir: string,
    extra?: Partial<UpdateContext>,
  ): Promise<UpdateContext & Disposable>;
}

/** Options of {@linkcode SignedRegistry.sign}. */
export interface SignOptions {
  repository: string;
  /** The signed docker-reference (default: `HOST/repository`). */
  reference?: string;
  logIndex: number;
  integratedTime?: number;
  /** Sign with another key. */
  publisher?: TestKey;
  /** How many signatures (default 1; each gets logIndex + i). */
  count?: number;
}

/** Starts a registry in `mode` with fresh publisher and Rekor keys. */
export async function startSignedRegistry(mode: RegistryMode): Promise<SignedRegistry> {
  const tmp: TempDir = makeTempDir(`update-${mode}`);
  const dir = tmp.path;
  const reg = await startRegistry({ mode });
  const publisher = createTestKey();
  const rekor = createTestKey();
  const pubkeyFile = join(dir, "cosign.pub");
  const rekorKeyFile = join(dir, "rekor.pub");
  await Deno.writeTextFile(pubkeyFile, publisher.publicPem);
  await Deno.writeTextFile(rekorKeyFile, rekor.publicPem);
  const clientOptions: RegistryClientOptions = { retry: { attempts: 1 } };
  const env: Record<string, string> = { REGISTRY_AUTH_FILE: join(dir, "auth.json") };
  if (reg.caCertPem !== undefined) clientOptions.caCerts = [reg.caCertPem];
  const auths = reg.username !== undefined && reg.password !== undefined
    ? { [reg.host]: { auth: btoa(`${reg.username}:${reg.password}`) } }
    : {};
  await Deno.writeTextFile(env.REGISTRY_AUTH_FILE ?? "", JSON.stringify({ auths }));
  clientOptions.credentials = createCredentialResolver({ env });
  let n = 0;

  async function pushSignatureManifest(repository: string, sig: SignatureManifest): Promise<void> {
    using client = new RegistryClient(clientOptions);
    const ref = parseReference(`${reg.host}/${repository}`);
    for (const b of [sig.config, ...sig.layers]) {
      await client.putBlob(ref, {
        mediaType: "application/octet-stream",
        digest: parseDigest(b.digest),
        size: b.bytes.length,
      }, b.bytes);
    }
    await client.putManifest(ref, sig.manifest.bytes, { tag: sig.tag });
  }

  const self: SignedRegistry = {
    reg,
    dir,
    publisher,
    rekor,
    pubkeyFile,
    rekorKeyFile,
    clientOptions,
    env,
    async pushBusybox(repository, tag, text) {
      const img = await buildBusyboxImage(join(dir, `img-${n++}`), { text });
      await pushImage(img, reg, { repository, tag });
      return img;
    },
    async push(image, repository, tag) {
      return (await pushImage(image, reg, { repository, tag })).digest;
    },
    async sign(digest, options) {
      const signed: SignedImage[] = [];
      for (let i = 0; i < (options.count ?? 1); i++) {
        signed.push(signImage({
          digest,
          reference: options.reference ?? `${reg.host}/${options.repository}`,
          publisher: options.publisher ?? publisher,
          rekor,
          logIndex: options.logIndex + i,
          ...(options.integratedTime === undefined ? {} : { integratedTime: options.integratedTime }),
        }));
      }
      await pushSignatureManifest(options.repository, signatureManifest(digest, signed));
      return signed;
    },
    pushSignatureManifest,
    cliArgs(image, dataDir) {
      return [
        "--image",
        image,
        "--pubkey",
        pubkeyFile,
        "--rekor-key",
        rekorKeyFile,
        "--data-dir",
        dataDir,
        ...(reg.caCertFile === undefined ? [] : ["--ca-cert", reg.caCertFile]),
      ];
    },
    async context(image, dataDir, extra = {}) {
      const registry = new RegistryClient(clientOptions);
      const publicKey = await parsePublicKeyPem(new TextEncoder().encode(publisher.publicPem));
      const rekorKey = await parsePublicKeyPem(new TextEncoder().encode(rekor.publicPem));
      const ctx: UpdateContext & Disposable = {
        image: parseReference(image),
        publicKey,
        rekorKeys: new RekorKeyring([{ key: rekorKey, source: "test", validFrom: null, validUntil: null }]),
        trustedRoot: undefined,
        identity: undefined,
        dataDir,
        registry,
        runtime: (): Promise<ContainerRuntime> => Promise.reject(new Error("no runtime in this test")),
        now: () => new Date(),
        ...extra,
        [Symbol.dispose]: () => registry.close(),
      };
      return ctx;
    },
    async [Symbol.asyncDispose]() {
      await reg.stop();
      await tmp.remove();
    },
  };
  return self;
}

/** The reference `HOST/repository:tag`. */
export function imageRef(sr: SignedRegistry, repository: string, tag: string): Reference {
  return parseReference(`${sr.reg.host}/${repository}:${tag}`);
}
