/**
 * Generates a corpus of hostile air-gapped archives from one valid archive: one per refusal of issue 5
 * (absolute paths, `..`, links of every kind, devices, duplicates, names outside the layout, oversized
 * entries, truncation, too many entries), plus a mismatched `index.json`/`dangerzone.json`, two images,
 * a signature for another digest, a blob with wrong bytes, a tar bomb, and more. Each case says which
 * exit code `load-archive` must give. Raw tar bytes come from `tests/layout/_tar_fixture.ts`, so
 * headers can be anything a hostile writer could produce.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { pax, type RawEntry, rawTar } from "../layout/_tar_fixture.ts";
import type { SignatureManifest } from "./cosign_signer.ts";

/** One regular-file or directory entry of a valid archive. */
export interface ArchiveEntry {
  /** The name as stored (e.g. `./blobs/sha256/<hex>`). */
  name: string;
  /** `0` file, `5` directory. */
  type: "0" | "5";
  /** File content. */
  body: Uint8Array;
}

/** One hostile archive. */
export interface HostileCase {
  /** What is wrong with it. */
  name: string;
  /** The tar bytes. */
  bytes: Uint8Array;
  /** The exit code load-archive must give (13 archive, 10 verification). */
  exitCode: 13 | 10;
}

/** Signature manifests made by the test for the signature cases. */
export interface HostileSignatures {
  /** A valid signature (trusted key) over ANOTHER digest. */
  forOtherDigest: SignatureManifest;
  /** A signature over the right digest by an untrusted key. */
  byOtherKey: SignatureManifest;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Parses the ustar archive our writer makes (no pax needed below 8 GiB) into entries. */
export function parseArchiveEntries(tar: Uint8Array): ArchiveEntry[] {
  const out: ArchiveEntry[] = [];
  let off = 0;
  while (off + 512 <= tar.length) {
    const h = tar.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const field = (a: number, n: number) => dec.decode(h.subarray(a, a + n)).replace(/\0.*$/s, "");
    const prefix = field(345, 155);
    const name = prefix === "" ? field(0, 100) : `${prefix}/${field(0, 100)}`;
    const size = parseInt(field(124, 12).trim() || "0", 8);
    const type = field(156, 1) === "5" ? "5" : "0";
    off += 512;
    out.push({ name, type, body: tar.slice(off, off + size) });
    off += Math.ceil(size / 512) * 512;
  }
  return out;
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

function toRaw(entries: readonly ArchiveEntry[]): RawEntry[] {
  return entries.map((e) => ({ name: e.name, type: e.type, body: e.body }));
}

function jsonOf(entries: readonly ArchiveEntry[], name: string): Record<string, unknown> {
  const e = entries.find((x) => x.name === name);
  if (e === undefined) throw new Error(`the valid archive has no ${name}`);
  const v: unknown = JSON.parse(dec.decode(e.body));
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error(`${name} is not an object`);
  return Object.fromEntries(Object.entries(v));
}

function manifestsOf(doc: Record<string, unknown>): Record<string, unknown>[] {
  const list = doc.manifests;
  if (!Array.isArray(list)) throw new Error("no manifests list");
  return list.map((m: unknown) => {
    if (typeof m !== "object" || m === null) throw new Error("bad entry");
    return Object.fromEntries(Object.entries(m));
  });
}

function kindOf(m: Record<string, unknown>): unknown {
  const a = m.annotations;
  return typeof a === "object" && a !== null ? Reflect.get(a, "kind") : undefined;
}

function replace(entries: readonly ArchiveEntry[], name: string, body: Uint8Array): ArchiveEntry[] {
  return entries.map((e) => e.name === name ? { ...e, body } : e);
}

function without(entries: readonly ArchiveEntry[], name: string): ArchiveEntry[] {
  return entries.filter((e) => e.name !== name);
}

function blobName(digest: string): string {
  return `./blobs/sha256/${digest.replace("sha256:", "")}`;
}

/** Replaces the archive's signature manifest (and its blobs) with `sig`, in both index files. */
function withSignature(entries: readonly ArchiveEntry[], sig: SignatureManifest): ArchiveEntry[] {
  const dz = jsonOf(entries, "./dangerzone.json");
  const manifests = manifestsOf(dz);
  const old = manifests.find((m) => kindOf(m) === "dev.cosignproject.cosign/sigs");
  const rest = entries.filter((e) => old === undefined || e.name !== blobName(String(old.digest)));
  const next = manifests.map((m) =>
    kindOf(m) === "dev.cosignproject.cosign/sigs"
      ? {
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        size: sig.manifest.bytes.length,
        digest: sig.manifest.digest,
        annotations: { kind: "dev.cosignproject.cosign/sigs" },
      }
      : m
  );
  const added: ArchiveEntry[] = [sig.config, ...sig.layers, sig.manifest]
    .filter((b) => !rest.some((e) => e.name === blobName(b.digest)))
    .map((b) => ({ name: blobName(b.digest), type: "0", body: b.bytes }));
  const out = [...rest.filter((e) => e.name.startsWith("./blobs/")), ...added];
  out.push({
    name: "./dangerzone.json",
    type: "0",
    body: enc.encode(JSON.stringify({ ...dz, manifests: next })),
  });
  return [...out, ...rest.filter((e) => !e.name.startsWith("./blobs/") && e.name !== "./dangerzone.json")];
}

/**
 * The corpus. `valid` is an archive load-archive accepts; every case changes one thing about it.
 */
export function hostileArchives(valid: Uint8Array, signatures: HostileSignatures): HostileCase[] {
  const entries = parseArchiveEntries(valid);
  const tar = (list: readonly ArchiveEntry[] | RawEntry[], end = true) =>
    rawTar(list.map((e) => ({ ...e })), { end });
  const dz = jsonOf(entries, "./dangerzone.json");
  const index = jsonOf(entries, "./index.json");
  const image = manifestsOf(index)[0];
  if (image === undefined) throw new Error("no image");
  const imageName = blobName(String(image.digest));
  const imageManifest: unknown = JSON.parse(
    dec.decode(entries.find((e) => e.name === imageName)?.body ?? new Uint8Array()),
  );
  const layerDigest = String(Reflect.get(Reflect.get(imageManifest ?? {}, "layers")?.[0] ?? {}, "digest"));
  const layerName = blobName(layerDigest);
  const layer = entries.find((e) => e.name === layerName);
  if (layer === undefined) throw new Error("no layer");
  const raw = toRaw(entries);
  const insertBefore = (extra: RawEntry[]): RawEntry[] => [...raw.slice(0, 3), ...extra, ...raw.slice(3)];
  const flipped = layer.body.slice();
  flipped[flipped.length >> 1] = (flipped[flipped.length >> 1] ?? 0) ^ 0x01;
  const cases: HostileCase[] = [];
  const add = (name: string, bytes: Uint8Array, exitCode: 13 | 10 = 13) =>
    cases.push({ name, bytes, exitCode });

  // Entry names and types.
  add("an absolute path", tar(insertBefore([{ name: "/etc/dz-evil", body: enc.encode("x") }])));
  add("a '..' path", tar(insertBefore([{ name: "../dz-evil", body: enc.encode("x") }])));
  add(
    "a '..' inside the layout",
    tar(insertBefore([{ name: "./blobs/../../dz-evil", body: enc.encode("x") }])),
  );
  add(
    "a symlink blob",
    tar(insertBefore([{ name: blobName("a".repeat(64)), type: "2", linkname: "/etc/passwd" }])),
  );
  add("a hard link", tar(insertBefore([{ name: "./blobs/sha256/hl", type: "1", linkname: "./oci-layout" }])));
  add("a character device", tar(insertBefore([{ name: "./dev-null", type: "3" }])));
  add("a block device", tar(insertBefore([{ name: "./dev-sda", type: "4" }])));
  add("a fifo", tar(insertBefore([{ name: "./fifo", type: "6" }])));
  add("an unknown entry type", tar(insertBefore([{ name: "./odd", type: "Z", body: enc.encode("x") }])));
  add(
    "a duplicate index.json",
    tar([...raw, { name: "./index.json", body: enc.encode(JSON.stringify(index)) }]),
  );
  add("a duplicate blob", tar([...raw, { name: layerName, body: layer.body }]));
  add("a name outside the layout", tar(insertBefore([{ name: "./etc/passwd", body: enc.encode("root") }])));
  add(
    "a blob name that is not a digest",
    tar(insertBefore([{ name: "./blobs/sha256/evil", body: enc.encode("x") }])),
  );
  add(
    "a pax header that moves a path out",
    tar(insertBefore([pax({ path: "../../dz-evil" }), { name: "./blobs/sha256/x", body: enc.encode("x") }])),
  );
  add(
    "an index.json over the size cap",
    tar(replaceRaw(raw, "./index.json", new Uint8Array(5 * 1024 * 1024).fill(0x20))),
  );
  add(
    "a blob over the size cap (pax size of 40 GiB)",
    tar(
      insertBefore([pax({ size: String(40 * 1024 ** 3) }), { name: layerName, body: new Uint8Array(512) }]),
      false,
    ),
  );
  add(
    "a bad header checksum",
    tar(raw.map((e) => e.name === "./index.json" ? { ...e, badChecksum: true } : e)),
  );
  add("a truncated archive (in a blob)", valid.slice(0, 1536 + 512 + (layer.body.length >> 1)));
  add("a truncated archive (no end marker)", tar(raw, false));
  add("data after the end marker", concat(valid, tar([{ name: "./late", body: enc.encode("x") }])));
  add("an empty file", new Uint8Array(0));
  add("a tar bomb of 10 001 entries", tarBomb());
  add("not a tar at all", enc.encode("PK\u0003\u0004 this is a zip file, not a tar".padEnd(2048, "z")));

  // Content.
  add("a layer blob with wrong bytes", tar(toRaw(replace(entries, layerName, flipped))));
  add("a missing layer blob", tar(toRaw(without(entries, layerName))));
  add("a missing image manifest", tar(toRaw(without(entries, imageName))));
  add("no index.json", tar(toRaw(without(entries, "./index.json"))));
  add("no oci-layout", tar(toRaw(without(entries, "./oci-layout"))));
  add(
    "index.json that differs from dangerzone.json",
    tar(toRaw(replace(entries, "./index.json", enc.encode(JSON.stringify({ ...index, manifests: [] }))))),
  );
  const sigsEntry = manifestsOf(dz).find((m) => kindOf(m) === "dev.cosignproject.cosign/sigs");
  const twoImages = {
    ...dz,
    manifests: [image, { ...sigsEntry, annotations: { kind: "dev.cosignproject.cosign/image" } }],
  };
  add(
    "two images",
    tar(toRaw(replace(
      replace(entries, "./dangerzone.json", enc.encode(JSON.stringify(twoImages))),
      "./index.json",
      enc.encode(JSON.stringify({ ...twoImages, manifests: twoImages.manifests })),
    ))),
  );
  add(
    "an unknown kind annotation",
    tar(toRaw(replace(
      entries,
      "./dangerzone.json",
      enc.encode(JSON.stringify({
        ...dz,
        manifests: manifestsOf(dz).map((m) =>
          kindOf(m) === "dev.cosignproject.cosign/sigs" ? { ...m, annotations: { kind: "evil" } } : m
        ),
      })),
    ))),
  );
  add(
    "duplicate keys in index.json",
    tar(
      toRaw(
        replace(
          entries,
          "./index.json",
          enc.encode(`{"schemaVersion":2,"schemaVersion":2,${JSON.stringify(index).slice(1)}`),
        ),
      ),
    ),
  );

  // Signatures (exit 10).
  add("a signature for another digest", tar(toRaw(withSignature(entries, signatures.forOtherDigest))), 10);
  add("a signature by an untrusted key", tar(toRaw(withSignature(entries, signatures.byOtherKey))), 10);
  add(
    "no signature manifest",
    tar(toRaw(replace(
      entries,
      "./dangerzone.json",
      enc.encode(
        JSON.stringify({
          ...dz,
          manifests: manifestsOf(dz).filter((m) => kindOf(m) !== "dev.cosignproject.cosign/sigs"),
        }),
      ),
    ))),
    10,
  );
  return cases;
}

function replaceRaw(raw: RawEntry[], name: string, body: Uint8Array): RawEntry[] {
  return raw.map((e) => e.name === name ? { ...e, body } : e);
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** 10 001 distinct, well-formed, empty-bodied directory entries inside the layout. */
function tarBomb(): Uint8Array {
  const entries: RawEntry[] = [{ name: "./", type: "5" }, { name: "./blobs/", type: "5" }];
  for (let i = 0; i < 10_001; i++) {
    const body = enc.encode(`bomb ${i}`);
    entries.push({ name: `./blobs/sha256/${sha256(body)}`, body });
  }
  return rawTar(entries);
}
