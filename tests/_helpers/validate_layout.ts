/**
 * Validates an OCI image layout on disk the way go-containerregistry's `validate.Image` does: every blob is
 * re-hashed and re-measured, and the descriptor graph from `index.json` (and `dangerzone.json`, when
 * present) down to configs and layers is walked. All problems are reported together.
 *
 * Run it after every test that writes a layout.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { join } from "node:path";

/** Result of {@linkcode validateLayout}. */
export interface LayoutReport {
  /** True when there are no problems. */
  ok: boolean;
  /** Every problem found, one line each. */
  problems: string[];
  /** Number of blob files hashed. */
  blobsChecked: number;
  /** Number of manifests and indexes walked. */
  manifestsWalked: number;
  /** Blobs no walked descriptor refers to (not a problem by itself). */
  unreferenced: string[];
}

const INDEX_TYPES = new Set([
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
]);
const MANIFEST_TYPES = new Set([
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
]);
const HEX64 = /^[0-9a-f]{64}$/;

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

async function hashFile(path: string): Promise<{ hex: string; size: number }> {
  const hash = createHash("sha256");
  let size = 0;
  using file = await Deno.open(path, { read: true });
  const buf = new Uint8Array(1024 * 1024);
  for (;;) {
    const n = await file.read(buf);
    if (n === null) break;
    hash.update(buf.subarray(0, n));
    size += n;
  }
  return { hex: hash.digest("hex"), size };
}

/**
 * Checks an OCI image layout directory and returns every problem found.
 *
 * @example
 * ```ts
 * import { validateLayout } from "./validate_layout.ts";
 * const report = await validateLayout("/tmp/layout");
 * if (!report.ok) throw new Error(report.problems.join("\n"));
 * ```
 */
export async function validateLayout(dir: string): Promise<LayoutReport> {
  const problems: string[] = [];
  const blobs = new Map<string, { hex: string; size: number }>();

  try {
    const layout: unknown = JSON.parse(await Deno.readTextFile(join(dir, "oci-layout")));
    if (!isRecord(layout) || layout.imageLayoutVersion !== "1.0.0") {
      problems.push("oci-layout: imageLayoutVersion is not 1.0.0");
    }
  } catch (e) {
    problems.push(`oci-layout: unreadable (${e instanceof Error ? e.message : String(e)})`);
  }

  try {
    for await (const alg of Deno.readDir(join(dir, "blobs"))) {
      if (alg.name !== "sha256" || !alg.isDirectory) {
        problems.push(`blobs/${alg.name}: unexpected entry (only the sha256 directory is allowed)`);
        continue;
      }
      for await (const entry of Deno.readDir(join(dir, "blobs", "sha256"))) {
        const rel = `blobs/sha256/${entry.name}`;
        if (!entry.isFile) {
          problems.push(`${rel}: not a regular file`);
          continue;
        }
        if (!HEX64.test(entry.name)) {
          problems.push(`${rel}: stray file (name is not a sha256 hex digest; leftover temp file?)`);
          continue;
        }
        const got = await hashFile(join(dir, rel));
        blobs.set(entry.name, got);
        if (got.hex !== entry.name) problems.push(`${rel}: content hashes to sha256:${got.hex}`);
      }
    }
  } catch (e) {
    problems.push(`blobs: unreadable (${e instanceof Error ? e.message : String(e)})`);
  }

  const referenced = new Set<string>();
  const walked = new Set<string>();
  let manifestsWalked = 0;

  async function readBlobJson(hex: string, where: string): Promise<Record<string, unknown> | undefined> {
    try {
      const parsed: unknown = JSON.parse(await Deno.readTextFile(join(dir, "blobs", "sha256", hex)));
      if (isRecord(parsed)) return parsed;
      problems.push(`${where}: not a JSON object`);
    } catch (e) {
      problems.push(`${where}: invalid JSON (${e instanceof Error ? e.message : String(e)})`);
    }
    return undefined;
  }

  /** Checks one descriptor; returns the blob hex when the blob is present and intact. */
  function checkDescriptor(desc: unknown, where: string): { hex: string; mediaType: string } | undefined {
    if (!isRecord(desc)) {
      problems.push(`${where}: descriptor is not an object`);
      return undefined;
    }
    const { mediaType, digest, size } = desc;
    if (typeof mediaType !== "string" || mediaType === "") problems.push(`${where}: missing mediaType`);
    if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) {
      problems.push(`${where}: invalid size ${JSON.stringify(size)}`);
    }
    if (typeof digest !== "string" || !digest.startsWith("sha256:") || !HEX64.test(digest.slice(7))) {
      problems.push(`${where}: invalid digest ${JSON.stringify(digest)}`);
      return undefined;
    }
    const hex = digest.slice(7);
    referenced.add(hex);
    const blob = blobs.get(hex);
    if (blob === undefined) {
      problems.push(`${where}: blob ${digest} is missing`);
      return undefined;
    }
    if (typeof size === "number" && blob.size !== size) {
      problems.push(`${where}: blob ${digest} has ${blob.size} bytes, descriptor says ${size}`);
      return undefined;
    }
    if (blob.hex !== hex) return undefined; // already reported
    return { hex, mediaType: typeof mediaType === "string" ? mediaType : "" };
  }

  async function walk(desc: unknown, where: string): Promise<void> {
    const ok = checkDescriptor(desc, where);
    if (ok === undefined) return;
    const isIndex = INDEX_TYPES.has(ok.mediaType);
    if (!isIndex && !MANIFEST_TYPES.has(ok.mediaType)) return;
    if (walked.has(ok.hex)) return;
    walked.add(ok.hex);
    manifestsWalked++;
    const name = `sha256:${ok.hex.slice(0, 12)}`;
    const doc = await readBlobJson(ok.hex, `${where} (${name})`);
    if (doc === undefined) return;
    if (doc.mediaType !== undefined && doc.mediaType !== ok.mediaType) {
      problems.push(
        `${where} (${name}): mediaType ${String(doc.mediaType)} differs from descriptor ${ok.mediaType}`,
      );
    }
    if (doc.schemaVersion !== 2) problems.push(`${where} (${name}): schemaVersion is not 2`);
    if (isIndex) {
      if (!Array.isArray(doc.manifests)) {
        problems.push(`${where} (${name}): manifests is not a list`);
        return;
      }
      for (const [i, m] of doc.manifests.entries()) await walk(m, `${name}.manifests[${i}]`);
      return;
    }
    const config = checkDescriptor(doc.config, `${name}.config`);
    const layers = Array.isArray(doc.layers) ? doc.layers : undefined;
    if (layers === undefined) {
      problems.push(`${name}: layers is not a list`);
      return;
    }
    for (const [i, l] of layers.entries()) checkDescriptor(l, `${name}.layers[${i}]`);
    if (config !== undefined && /image\.config|container\.image/.test(config.mediaType)) {
      const cfg = await readBlobJson(config.hex, `${name}.config`);
      const rootfs = cfg?.rootfs;
      if (cfg !== undefined && (!isRecord(rootfs) || !Array.isArray(rootfs.diff_ids))) {
        problems.push(`${name}.config: rootfs.diff_ids missing`);
      } else if (
        isRecord(rootfs) && Array.isArray(rootfs.diff_ids) && rootfs.diff_ids.length !== layers.length
      ) {
        problems.push(`${name}.config: ${rootfs.diff_ids.length} diff_ids for ${layers.length} layers`);
      }
    }
  }

  const indexFiles = ["index.json"];
  try {
    await Deno.stat(join(dir, "dangerzone.json"));
    indexFiles.push("dangerzone.json");
  } catch {
    // optional
  }
  for (const file of indexFiles) {
    let index: unknown;
    try {
      index = JSON.parse(await Deno.readTextFile(join(dir, file)));
    } catch (e) {
      problems.push(`${file}: unreadable (${e instanceof Error ? e.message : String(e)})`);
      continue;
    }
    if (!isRecord(index) || !Array.isArray(index.manifests)) {
      problems.push(`${file}: manifests is not a list`);
      continue;
    }
    if (index.schemaVersion !== 2) problems.push(`${file}: schemaVersion is not 2`);
    for (const [i, m] of index.manifests.entries()) await walk(m, `${file}.manifests[${i}]`);
  }

  const unreferenced = [...blobs.keys()].filter((hex) => !referenced.has(hex)).map((hex) => `sha256:${hex}`);
  return { ok: problems.length === 0, problems, blobsChecked: blobs.size, manifestsWalked, unreferenced };
}

/**
 * Throws an Error listing every problem when the layout is not valid.
 *
 * @example
 * ```ts
 * import { assertValidLayout } from "./validate_layout.ts";
 * await assertValidLayout("/tmp/layout");
 * ```
 */
export async function assertValidLayout(dir: string): Promise<LayoutReport> {
  const report = await validateLayout(dir);
  if (!report.ok) throw new Error(`invalid OCI layout ${dir}:\n  ${report.problems.join("\n  ")}`);
  return report;
}
