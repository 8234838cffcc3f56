/**
 * Walks every descriptor reachable from a set of roots (index -> manifests -> config and layers)
 * in a layout and reports every blob that is missing, has the wrong size, or (for manifests,
 * which are read) does not hash to its digest or does not parse. Like ggcr `validate`, it reports
 * all problems together instead of stopping at the first.
 *
 * @module
 */
import { DangerzoneError } from "../errors.ts";
import type { Descriptor } from "../oci/descriptor.ts";
import type { Digest } from "../oci/digest.ts";
import { parseManifest } from "../oci/manifest.ts";
import { isIndexMediaType, isManifestMediaType } from "../oci/media_types.ts";
import { parseStrictJsonAs } from "../strict_json.ts";

/** What {@linkcode findBlobProblems} needs from a layout ({@linkcode OciLayoutDir} has it). */
export interface BlobLookup {
  /** Size of the blob file, or undefined when absent. */
  statBlob(digest: Digest): Promise<number | undefined>;
  /** Verified bytes of a manifest. */
  getManifest(desc: Descriptor): Promise<Uint8Array>;
}

/** A root of the walk, with a label used in reports. */
export interface BlobRoot {
  /** The descriptor to start from. */
  descriptor: Descriptor;
  /** How to name it in reports, e.g. `dangerzone.json manifests[1] (sigs)`. */
  label: string;
}

/** One problem found by {@linkcode findBlobProblems}. */
export interface BlobProblem {
  /** `missing`, `size-mismatch`, or `corrupt` (manifest bytes or JSON wrong). */
  kind: "missing" | "size-mismatch" | "corrupt";
  /** The descriptor that points at the blob. */
  descriptor: Descriptor;
  /** Where the descriptor was found, e.g. `image > manifests[0] > layers[2]`. */
  path: string;
  /** One line of detail. */
  detail: string;
}

/** Options of {@linkcode findBlobProblems}. */
export interface BlobCheckOptions {
  /** Most descriptors visited before giving up with `ARCHIVE_INVALID` (default 100 000). */
  maxDescriptors?: number;
}

/**
 * Reports every missing, wrong-size or corrupt blob reachable from `roots`. Manifests and
 * indexes are read through the store (verified against their descriptor) and followed; other
 * blobs are checked by presence and size (their bytes are verified when streamed).
 *
 * @example
 * ```ts
 * import { findBlobProblems } from "./blob_check.ts";
 * import { OciLayoutDir } from "./dir.ts";
 * const dir = await OciLayoutDir.create(await Deno.makeTempDir());
 * const problems = await findBlobProblems(dir, []);
 * console.log(problems.length);
 * ```
 */
export async function findBlobProblems(
  store: BlobLookup,
  roots: readonly BlobRoot[],
  options: BlobCheckOptions = {},
): Promise<BlobProblem[]> {
  const max = options.maxDescriptors ?? 100_000;
  const problems: BlobProblem[] = [];
  const visited = new Set<string>();
  const queue: { descriptor: Descriptor; path: string }[] = roots.map((r) => ({
    descriptor: r.descriptor,
    path: r.label,
  }));
  let count = 0;
  while (queue.length > 0) {
    const item = queue.shift();
    if (item === undefined) break;
    const { descriptor: d, path } = item;
    const key = `${d.digest} ${d.size}`;
    if (visited.has(key)) continue;
    visited.add(key);
    if (++count > max) {
      throw new DangerzoneError("ARCHIVE_INVALID", `the layout references more than ${max} descriptors`);
    }
    const size = await store.statBlob(d.digest);
    if (size === undefined) {
      problems.push({ kind: "missing", descriptor: d, path, detail: `${d.digest} is missing` });
      continue;
    }
    if (size !== d.size) {
      problems.push({
        kind: "size-mismatch",
        descriptor: d,
        path,
        detail: `${d.digest} has ${size} bytes, the descriptor says ${d.size}`,
      });
      continue;
    }
    const isIndex = isIndexMediaType(d.mediaType);
    if (!isIndex && !isManifestMediaType(d.mediaType)) continue;
    let manifest;
    try {
      const raw = await store.getManifest(d);
      parseStrictJsonAs(raw, `manifest ${d.digest.slice(0, 19)}…`, "MANIFEST_INVALID");
      manifest = parseManifest(raw);
    } catch (err) {
      if (!(err instanceof DangerzoneError)) throw err;
      if (
        !["DIGEST_MISMATCH", "SIZE_MISMATCH", "MANIFEST_INVALID", "SIZE_LIMIT_EXCEEDED"].includes(err.code)
      ) {
        throw err;
      }
      problems.push({ kind: "corrupt", descriptor: d, path, detail: err.message });
      continue;
    }
    if (manifest.mediaType !== d.mediaType) {
      problems.push({
        kind: "corrupt",
        descriptor: d,
        path,
        detail: `the descriptor says ${d.mediaType} but the content is ${manifest.mediaType}`,
      });
      continue;
    }
    if (manifest.kind === "index") {
      manifest.manifests.forEach((m, i) => queue.push({ descriptor: m, path: `${path} > manifests[${i}]` }));
    } else {
      queue.push({ descriptor: manifest.config, path: `${path} > config` });
      manifest.layers.forEach((l, i) => queue.push({ descriptor: l, path: `${path} > layers[${i}]` }));
    }
  }
  return problems;
}

/**
 * Like {@linkcode findBlobProblems}, but throws `ARCHIVE_INVALID` naming the first problem and
 * how many there are.
 */
export async function assertBlobsComplete(
  store: BlobLookup,
  roots: readonly BlobRoot[],
  options: BlobCheckOptions = {},
): Promise<void> {
  const problems = await findBlobProblems(store, roots, options);
  const first = problems[0];
  if (first === undefined) return;
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more problems)` : "";
  throw new DangerzoneError("ARCHIVE_INVALID", `${first.path}: ${first.detail}${more}`, {
    hint: "the archive or layout is incomplete or damaged; make it again",
  });
}
