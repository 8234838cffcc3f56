/**
 * Test image builders (umoci, plus a streaming writer for large layers) and a skopeo pusher that keeps
 * digests, so a test knows the exact digest a registry serves.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { type Digest, parseDigest } from "../../src/oci/digest.ts";

export type { Digest };
import { runCommand } from "./process.ts";
import type { RunningRegistry } from "./registry.ts";

/** A single-platform image in an OCI layout. */
export interface BuiltImage {
  /** Discriminant. */
  kind: "manifest";
  /** The OCI image layout directory. */
  layoutDir: string;
  /** Its `org.opencontainers.image.ref.name` in the layout (`oci:DIR:NAME`). */
  name: string;
  /** Manifest digest. */
  digest: Digest;
  /** Manifest size in bytes. */
  size: number;
  /** Manifest media type. */
  mediaType: string;
  /** Config digest (podman's image ID is its hex). */
  configDigest: Digest;
  /** Layer digests in order. */
  layerDigests: Digest[];
}

/** One platform of a {@linkcode BuiltIndex}. */
export interface BuiltPlatform {
  /** `linux/amd64` style. */
  platform: string;
  /** Manifest digest. */
  digest: Digest;
  /** Manifest size. */
  size: number;
}

/** A multi-platform image index in an OCI layout. */
export interface BuiltIndex {
  /** Discriminant. */
  kind: "index";
  /** The OCI image layout directory. */
  layoutDir: string;
  /** Its ref name in the layout. */
  name: string;
  /** Index digest. */
  digest: Digest;
  /** Index size in bytes. */
  size: number;
  /** Index media type. */
  mediaType: string;
  /** The platform manifests, in index order. */
  platforms: BuiltPlatform[];
}

/** Options of {@linkcode buildBusyboxImage}. */
export interface BusyboxImageOptions {
  /** Content of `/hello.txt` (vary it to make a "newer" image with another digest). */
  text?: string;
  /** Ref name in the layout (default `latest`). */
  name?: string;
  /** Architecture in the config (default `amd64`; the busybox binary is the host's). */
  architecture?: string;
}

const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
const REF_NAME = "org.opencontainers.image.ref.name";

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

async function readJsonRecord(path: string): Promise<Record<string, unknown>> {
  const parsed: unknown = JSON.parse(await Deno.readTextFile(path));
  if (!isRecord(parsed)) throw new Error(`${path}: not a JSON object`);
  return parsed;
}

interface Desc {
  mediaType: string;
  digest: Digest;
  size: number;
  annotations: Record<string, unknown> | undefined;
}

function toDesc(x: unknown, where: string): Desc {
  if (
    !isRecord(x) || typeof x.mediaType !== "string" || typeof x.digest !== "string" ||
    typeof x.size !== "number"
  ) {
    throw new Error(`${where}: malformed descriptor`);
  }
  return {
    mediaType: x.mediaType,
    digest: parseDigest(x.digest),
    size: x.size,
    annotations: isRecord(x.annotations) ? x.annotations : undefined,
  };
}

async function layoutEntry(layoutDir: string, name: string): Promise<Desc> {
  const index = await readJsonRecord(join(layoutDir, "index.json"));
  const manifests = Array.isArray(index.manifests) ? index.manifests : [];
  for (const m of manifests) {
    const d = toDesc(m, `${layoutDir}/index.json`);
    if (d.annotations?.[REF_NAME] === name) return d;
  }
  throw new Error(`${layoutDir}: no image named ${name}`);
}

function blobPath(layoutDir: string, digest: Digest): string {
  return join(layoutDir, "blobs", "sha256", digest.slice("sha256:".length));
}

async function describeImage(layoutDir: string, name: string): Promise<BuiltImage> {
  const entry = await layoutEntry(layoutDir, name);
  const manifest = await readJsonRecord(blobPath(layoutDir, entry.digest));
  const config = toDesc(manifest.config, "manifest config");
  const layers = Array.isArray(manifest.layers)
    ? manifest.layers.map((l) => toDesc(l, "manifest layer"))
    : [];
  return {
    kind: "manifest",
    layoutDir,
    name,
    digest: entry.digest,
    size: entry.size,
    mediaType: entry.mediaType,
    configDigest: config.digest,
    layerDigests: layers.map((l) => l.digest),
  };
}

async function umoci(args: string[]): Promise<void> {
  await runCommand("umoci", args);
}

async function umociImage(
  layoutDir: string,
  name: string,
  options: {
    files: Record<string, string | { copyFrom: string; mode: number }>;
    architecture: string;
    cmd?: string[];
  },
): Promise<void> {
  const image = `${layoutDir}:${name}`;
  const bundle = `${layoutDir}.bundle-${name}`;
  await umoci(["new", "--image", image]);
  await umoci(["unpack", "--image", image, bundle]);
  try {
    for (const [path, content] of Object.entries(options.files)) {
      const target = join(bundle, "rootfs", path);
      await Deno.mkdir(join(target, ".."), { recursive: true });
      if (typeof content === "string") {
        await Deno.writeTextFile(target, content);
      } else {
        await Deno.copyFile(content.copyFrom, target);
        await Deno.chmod(target, content.mode);
      }
    }
    await umoci(["repack", "--image", image, bundle]);
  } finally {
    await Deno.remove(bundle, { recursive: true });
  }
  const cmd = (options.cmd ?? []).flatMap((c) => ["--config.cmd", c]);
  await umoci(["config", "--image", image, "--os", "linux", "--architecture", options.architecture, ...cmd]);
}

/**
 * Builds a tiny runnable image: a static busybox at `/bin/busybox` and `/hello.txt`, command
 * `busybox cat /hello.txt`, in a new OCI layout at `layoutDir` (which must not exist yet).
 *
 * @example
 * ```ts
 * import { buildBusyboxImage } from "./images.ts";
 * const img = await buildBusyboxImage("/tmp/x/layout", { text: "v2" });
 * ```
 */
export async function buildBusyboxImage(
  layoutDir: string,
  options: BusyboxImageOptions = {},
): Promise<BuiltImage> {
  const name = options.name ?? "latest";
  await umoci(["init", "--layout", layoutDir]);
  await umociImage(layoutDir, name, {
    files: {
      "bin/busybox": { copyFrom: "/bin/busybox", mode: 0o755 },
      "hello.txt": `${options.text ?? "hello from sandbox v1"}\n`,
    },
    architecture: options.architecture ?? "amd64",
    cmd: ["/bin/busybox", "cat", "/hello.txt"],
  });
  await umoci(["gc", "--layout", layoutDir]);
  return await describeImage(layoutDir, name);
}

/** Options of {@linkcode buildMultiArchImage}. */
export interface MultiArchImageOptions {
  /** Marker text in every platform's `/hello.txt`. */
  text?: string;
  /** Ref name of the index in the layout (default `multi`). */
  name?: string;
}

/**
 * Builds an OCI image index for linux/amd64 and linux/arm64 (the amd64 image holds a runnable busybox; both
 * hold `/arch.txt` and `/hello.txt`). The index blob is written by hand, since umoci makes no indexes.
 *
 * @example
 * ```ts
 * import { buildMultiArchImage } from "./images.ts";
 * const idx = await buildMultiArchImage("/tmp/x/multi");
 * ```
 */
export async function buildMultiArchImage(
  layoutDir: string,
  options: MultiArchImageOptions = {},
): Promise<BuiltIndex> {
  const name = options.name ?? "multi";
  const text = `${options.text ?? "hello from sandbox v1"}\n`;
  await umoci(["init", "--layout", layoutDir]);
  const platforms: BuiltPlatform[] = [];
  const entries: unknown[] = [];
  for (const arch of ["amd64", "arm64"]) {
    const files: Record<string, string | { copyFrom: string; mode: number }> = {
      "arch.txt": `${arch} payload\n`,
      "hello.txt": text,
    };
    if (arch === "amd64") files["bin/busybox"] = { copyFrom: "/bin/busybox", mode: 0o755 };
    await umociImage(layoutDir, `${name}-${arch}`, {
      files,
      architecture: arch,
      cmd: ["/bin/busybox", "cat", "/hello.txt"],
    });
    const d = await layoutEntry(layoutDir, `${name}-${arch}`);
    platforms.push({ platform: `linux/${arch}`, digest: d.digest, size: d.size });
    entries.push({
      mediaType: d.mediaType,
      digest: d.digest,
      size: d.size,
      platform: { architecture: arch, os: "linux" },
    });
  }
  await umoci(["gc", "--layout", layoutDir]);
  const raw = new TextEncoder().encode(
    JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: entries }),
  );
  const digest = await writeBlob(layoutDir, raw);
  const indexPath = join(layoutDir, "index.json");
  const index = await readJsonRecord(indexPath);
  const manifests = Array.isArray(index.manifests) ? index.manifests : [];
  manifests.push({ mediaType: OCI_INDEX, digest, size: raw.length, annotations: { [REF_NAME]: name } });
  await Deno.writeTextFile(indexPath, JSON.stringify({ ...index, manifests }));
  return { kind: "index", layoutDir, name, digest, size: raw.length, mediaType: OCI_INDEX, platforms };
}

async function writeBlob(layoutDir: string, raw: Uint8Array): Promise<Digest> {
  const digest = parseDigest(`sha256:${createHash("sha256").update(raw).digest("hex")}`);
  await Deno.writeFile(blobPath(layoutDir, digest), raw);
  return digest;
}

function tarHeader(name: string, size: number): Uint8Array {
  const h = new Uint8Array(512);
  const enc = new TextEncoder();
  const put = (offset: number, text: string) => h.set(enc.encode(text), offset);
  put(0, name);
  put(100, "0000644\0");
  put(108, "0000000\0");
  put(116, "0000000\0");
  put(124, `${size.toString(8).padStart(11, "0")}\0`);
  put(136, `${Math.floor(Date.now() / 1000).toString(8).padStart(11, "0")}\0`);
  put(148, "        ");
  put(156, "0");
  put(257, "ustar\0");
  put(263, "00");
  let sum = 0;
  for (const b of h) sum += b;
  put(148, `${sum.toString(8).padStart(6, "0")}\0 `);
  return h;
}

/** Options of {@linkcode buildLargeImage}. */
export interface LargeImageOptions {
  /** Size of the random file in MiB. */
  sizeMiB: number;
  /** Ref name in the layout (default `large`). */
  name?: string;
}

/**
 * Builds a single-layer image whose layer is an UNCOMPRESSED tar (`application/vnd.oci.image.layer.v1.tar`)
 * holding one file of `sizeMiB` MiB from /dev/urandom (random data does not compress anyway). The layer is
 * streamed to disk and hashed on the way, never held in memory. Written directly (no umoci) for speed.
 *
 * @example
 * ```ts
 * import { buildLargeImage } from "./images.ts";
 * const img = await buildLargeImage("/tmp/x/large", { sizeMiB: 64 });
 * ```
 */
export async function buildLargeImage(layoutDir: string, options: LargeImageOptions): Promise<BuiltImage> {
  const name = options.name ?? "large";
  const blobsDir = join(layoutDir, "blobs", "sha256");
  await Deno.mkdir(blobsDir, { recursive: true });
  await Deno.writeTextFile(join(layoutDir, "oci-layout"), '{"imageLayoutVersion":"1.0.0"}');
  const size = options.sizeMiB * 1024 * 1024;
  const tmpPath = join(blobsDir, "layer.tmp");
  const hash = createHash("sha256");
  let layerSize = 0;
  {
    using out = await Deno.open(tmpPath, { write: true, create: true, truncate: true });
    using rand = await Deno.open("/dev/urandom", { read: true });
    const write = async (bytes: Uint8Array) => {
      hash.update(bytes);
      layerSize += bytes.length;
      let off = 0;
      while (off < bytes.length) off += await out.write(bytes.subarray(off));
    };
    await write(tarHeader("random.bin", size));
    const chunk = new Uint8Array(1024 * 1024);
    let left = size;
    while (left > 0) {
      const n = await rand.read(chunk.subarray(0, Math.min(chunk.length, left)));
      if (n === null) throw new Error("/dev/urandom ended");
      await write(chunk.subarray(0, n));
      left -= n;
    }
    // size is a multiple of 512, so no padding; then the two zero end-of-archive blocks
    await write(new Uint8Array(1024));
  }
  const layerDigest = parseDigest(`sha256:${hash.digest("hex")}`);
  await Deno.rename(tmpPath, blobPath(layoutDir, layerDigest));
  const enc = new TextEncoder();
  const config = enc.encode(JSON.stringify({
    architecture: "amd64",
    os: "linux",
    config: {},
    rootfs: { type: "layers", diff_ids: [layerDigest] },
    history: [{ created_by: `dangerzone-image test: ${options.sizeMiB} MiB random` }],
  }));
  const configDigest = await writeBlob(layoutDir, config);
  const manifest = enc.encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: {
      mediaType: "application/vnd.oci.image.config.v1+json",
      digest: configDigest,
      size: config.length,
    },
    layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: layerDigest, size: layerSize }],
  }));
  const digest = await writeBlob(layoutDir, manifest);
  await Deno.writeTextFile(
    join(layoutDir, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [{
        mediaType: OCI_MANIFEST,
        digest,
        size: manifest.length,
        annotations: { [REF_NAME]: name },
      }],
    }),
  );
  return {
    kind: "manifest",
    layoutDir,
    name,
    digest,
    size: manifest.length,
    mediaType: OCI_MANIFEST,
    configDigest,
    layerDigests: [layerDigest],
  };
}

/** Options of {@linkcode pushImage}. */
export interface PushOptions {
  /** Repository on the registry, e.g. `sandbox/app`. */
  repository: string;
  /** Tag (default `latest`). */
  tag?: string;
  /** Push every platform of an index (default: true for an index). */
  all?: boolean;
  /** Push with this user instead of the registry's own test user. */
  creds?: { username: string; password: string };
}

/** Result of {@linkcode pushImage}. */
export interface PushedImage {
  /** `HOST/REPOSITORY:TAG`. */
  reference: string;
  /** The digest skopeo pushed (equal to the built image's digest). */
  digest: Digest;
}

/**
 * Pushes an image or index from its OCI layout to a test registry with `skopeo copy --preserve-digests`,
 * using the registry's CA and credentials, and checks that the pushed digest is the built one.
 *
 * @example
 * ```ts
 * import { buildBusyboxImage, pushImage } from "./images.ts";
 * import { startRegistry } from "./registry.ts";
 * await using reg = await startRegistry({ mode: "plain" });
 * const img = await buildBusyboxImage("/tmp/x/layout");
 * await pushImage(img, reg, { repository: "sandbox/app", tag: "v1" });
 * ```
 */
export async function pushImage(
  image: BuiltImage | BuiltIndex,
  registry: RunningRegistry,
  options: PushOptions,
): Promise<PushedImage> {
  const reference = `${registry.host}/${options.repository}:${options.tag ?? "latest"}`;
  const digestFile = `${image.layoutDir}.push-${crypto.randomUUID()}.digest`;
  const args = ["copy", "-q", "--preserve-digests", "--digestfile", digestFile];
  if (options.all ?? image.kind === "index") args.push("--all");
  if (registry.certDir !== undefined) args.push("--dest-cert-dir", registry.certDir);
  else args.push("--dest-tls-verify=false");
  const creds = options.creds ??
    (registry.username !== undefined && registry.password !== undefined
      ? { username: registry.username, password: registry.password }
      : undefined);
  if (creds !== undefined) args.push("--dest-creds", `${creds.username}:${creds.password}`);
  args.push(`oci:${image.layoutDir}:${image.name}`, `docker://${reference}`);
  try {
    await runCommand("skopeo", args);
    const digest = parseDigest((await Deno.readTextFile(digestFile)).trim());
    if (digest !== image.digest) throw new Error(`skopeo pushed ${digest}, expected ${image.digest}`);
    return { reference, digest };
  } finally {
    await Deno.remove(digestFile).catch(() => {});
  }
}

/** Options of {@linkcode tagManifest}. */
export interface TagManifestOptions {
  /** Repository on the registry. */
  repository: string;
  /** Existing tag or digest to copy. */
  from: string;
  /** New tags to create. */
  tags: string[];
}

/**
 * Adds tags to a manifest already in a test registry (GET the manifest bytes, PUT them under each tag),
 * much faster than one skopeo push per tag. For tag-list pagination tests.
 *
 * @example
 * ```ts
 * import { tagManifest } from "./images.ts";
 * // await tagManifest(reg, { repository: "sandbox/app", from: "v1", tags: ["t1", "t2"] });
 * ```
 */
export async function tagManifest(registry: RunningRegistry, options: TagManifestOptions): Promise<void> {
  const auth = await registry.authHeaders(options.repository, ["pull", "push"]);
  const accept = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST].join(", ");
  const res = await registry.fetch(`/v2/${options.repository}/manifests/${options.from}`, {
    headers: { ...auth, accept },
  });
  const raw = new Uint8Array(await res.arrayBuffer());
  if (res.status !== 200) throw new Error(`GET manifest ${options.from}: HTTP ${res.status}`);
  const contentType = res.headers.get("content-type") ?? OCI_MANIFEST;
  for (const tag of options.tags) {
    const put = await registry.fetch(`/v2/${options.repository}/manifests/${tag}`, {
      method: "PUT",
      headers: { ...auth, "content-type": contentType },
      body: raw,
    });
    await put.body?.cancel();
    if (put.status !== 201) throw new Error(`PUT manifest ${tag}: HTTP ${put.status}`);
  }
}

/**
 * Writes an OCI layout directory as a tar with `oci-layout`, `index.json` and `blobs/` at its root (what
 * `podman load` and `docker load` accept).
 *
 * @example
 * ```ts
 * import { writeLayoutTar } from "./images.ts";
 * // await writeLayoutTar(img.layoutDir, "/tmp/x/img.tar");
 * ```
 */
export async function writeLayoutTar(layoutDir: string, tarPath: string): Promise<void> {
  await runCommand("tar", ["-C", layoutDir, "-cf", tarPath, "oci-layout", "index.json", "blobs"]);
}
