/**
 * Makes cosign v3 image signatures for tests, the way `cosign sign --key` (new bundle format, cosign v3's
 * default) does: an in-toto statement `{_type: Statement/v1, subject: [{digest: {sha256}, annotations: {}}],
 * predicateType: https://sigstore.dev/cosign/sign/v1, predicate: {}}` (no docker-reference, as cosign
 * writes it), a DSSE envelope signed by the publisher key (ECDSA P-256 over the DSSE PAE), a `dsse`
 * 0.0.1 entry in a test Rekor log, and a Sigstore bundle v0.3 carrying the entry with its Signed Entry
 * Timestamp and an inclusion proof against a checkpoint signed by the log.
 *
 * The test log ({@linkcode TestRekorLog}) is a real RFC 6962 Merkle tree of several leaves (other
 * entries around ours), with signed-note checkpoints in Rekor's format (`origin - treeID`, size, root,
 * `Timestamp:`, then `— name base64(keyhint4 || signature)`); {@linkcode testTrustedRoot} writes the
 * trusted_root.json that lists the logs (key, validity, declared log ID). Bundles are pushed as OCI
 * referrers through the referrers tag schema (`sha256-<hex>` index), which distribution 2.8 serves.
 *
 * Keys are {@linkcode TestKey}s from `cosign_signer.ts`.
 *
 * @module
 */
import { createHash, createPublicKey, type KeyObject, sign } from "node:crypto";
import { parseDigest } from "../../src/oci/digest.ts";
import { parseReference } from "../../src/oci/reference.ts";
import { RegistryClient, type RegistryClientOptions } from "../../src/registry/client.ts";
import { createTestKey, type TestKey } from "./cosign_signer.ts";

const encoder = new TextEncoder();
/** The bundle media type cosign v3 writes (layer and artifact type). */
export const BUNDLE_V03_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json";
/** The cosign v3 image-signature predicate type. */
export const COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1";
const EMPTY_CONFIG = encoder.encode("{}");

function sha256(...parts: Uint8Array[]): Uint8Array {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

function b64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function spkiDer(key: TestKey): Uint8Array {
  return new Uint8Array(createPublicKey(key.publicPem).export({ type: "spki", format: "der" }));
}

const LEAF = new Uint8Array([0]);
const NODE = new Uint8Array([1]);

/** RFC 6962 Merkle tree hash of `leaves[from, to)`. */
function treeHash(leaves: readonly Uint8Array[], from: number, to: number): Uint8Array {
  const n = to - from;
  if (n === 1) return sha256(LEAF, leaves[from] ?? new Uint8Array());
  if (n === 0) return sha256();
  let k = 1;
  while (k * 2 < n) k *= 2;
  return sha256(NODE, treeHash(leaves, from, from + k), treeHash(leaves, from + k, to));
}

/** RFC 6962 audit path of leaf `m` in `leaves[from, to)`, lowest level first. */
function auditPath(leaves: readonly Uint8Array[], m: number, from: number, to: number): Uint8Array[] {
  const n = to - from;
  if (n <= 1) return [];
  let k = 1;
  while (k * 2 < n) k *= 2;
  return m < k
    ? [...auditPath(leaves, m, from, from + k), treeHash(leaves, from + k, to)]
    : [...auditPath(leaves, m - k, from + k, to), treeHash(leaves, from, from + k)];
}

/** Options of {@linkcode TestRekorLog}. */
export interface TestRekorLogOptions {
  /** The log key. */
  key: TestKey;
  /** The checkpoint signer name (host), also in the trusted root's baseUrl. Default `rekor.test.local`. */
  name?: string;
  /**
   * The log ID the trusted root declares (hex). Default: sha256 of the key's SPKI (Rekor v1); a Rekor v2
   * shard declares its own.
   */
  logId?: string;
  /** Added to the tree index to make the global `logIndex` (Rekor v1 shards); default 0. */
  indexOffset?: number;
  /** Leaves already in the log before the first entry of ours (default 3). */
  prefill?: number;
  /** The key's validity start (default 2020-01-01). */
  validFrom?: string;
  /** The key's validity end, if any. */
  validUntil?: string;
}

/** A transparency log for tests: a real Merkle tree, SETs and signed checkpoints. */
export class TestRekorLog {
  readonly key: TestKey;
  readonly name: string;
  /** The declared log ID (hex). */
  readonly logId: string;
  readonly indexOffset: number;
  readonly validFrom: string;
  readonly validUntil: string | undefined;
  readonly treeId = 1193050959916656506n;
  readonly #leaves: Uint8Array[] = [];

  constructor(options: TestRekorLogOptions) {
    this.key = options.key;
    this.name = options.name ?? "rekor.test.local";
    this.logId = options.logId ?? hex(sha256(spkiDer(options.key)));
    this.indexOffset = options.indexOffset ?? 0;
    this.validFrom = options.validFrom ?? "2020-01-01T00:00:00Z";
    this.validUntil = options.validUntil;
    for (let i = 0; i < (options.prefill ?? 3); i++) this.append(encoder.encode(`{"filler":${i}}`));
  }

  /** How many leaves the tree has. */
  get size(): number {
    return this.#leaves.length;
  }

  /** Appends a canonicalized entry body; returns its tree (leaf) index. */
  append(body: Uint8Array): number {
    this.#leaves.push(body);
    return this.#leaves.length - 1;
  }

  /** The root hash of the tree at `size`. */
  root(size = this.size): Uint8Array {
    return treeHash(this.#leaves, 0, size);
  }

  /** The inclusion proof hashes of leaf `index` in the tree at `size`. */
  proof(index: number, size = this.size): Uint8Array[] {
    return auditPath(this.#leaves, index, 0, size);
  }

  /** A checkpoint (signed note) for the tree at `size`, signed by `signer` (default: the log key). */
  checkpoint(size = this.size, signer: KeyObject = this.key.privateKey): string {
    const note = `${this.name} - ${this.treeId}\n${size}\n${b64(this.root(size))}\nTimestamp: ${
      BigInt(Date.now()) * 1000000n
    }\n`;
    const sig = new Uint8Array(sign("sha256", encoder.encode(note), signer));
    const hint = hexBytes(this.logId).subarray(0, 4);
    const signed = new Uint8Array(hint.length + sig.length);
    signed.set(hint);
    signed.set(sig, hint.length);
    return `${note}\n\u2014 ${this.name} ${b64(signed)}\n`;
  }

  /** The Signed Entry Timestamp over `{body, integratedTime, logID, logIndex}` (RFC 8785 canonical). */
  set(
    body: Uint8Array,
    integratedTime: number,
    logIndex: number,
    signer: KeyObject = this.key.privateKey,
  ): string {
    const canonical = `{"body":${JSON.stringify(b64(body))},"integratedTime":${integratedTime},` +
      `"logID":${JSON.stringify(this.logId)},"logIndex":${logIndex}}`;
    return b64(new Uint8Array(sign("sha256", encoder.encode(canonical), signer)));
  }

  /** This log's entry in a trusted_root.json `tlogs` list. */
  trustedRootEntry(): Record<string, unknown> {
    return {
      baseUrl: `https://${this.name}`,
      hashAlgorithm: "SHA2_256",
      publicKey: {
        rawBytes: b64(spkiDer(this.key)),
        keyDetails: "PKIX_ECDSA_P256_SHA_256",
        validFor: {
          start: this.validFrom,
          ...(this.validUntil === undefined ? {} : { end: this.validUntil }),
        },
      },
      logId: { keyId: b64(hexBytes(this.logId)) },
    };
  }
}

function hexBytes(text: string): Uint8Array {
  return new Uint8Array((text.match(/../g) ?? []).map((h) => parseInt(h, 16)));
}

/**
 * A Rekor v2-style shard: its own key and declared log ID (not the SPKI hash), indexes from 0, the
 * shape of a log that anti-rollback must keep apart from every other.
 */
export function testShardLog(): TestRekorLog {
  return new TestRekorLog({
    key: createTestKey(),
    name: "log2026-1.rekor.test.local",
    logId: createHash("sha256").update("shard 2026-1").digest("hex"),
    prefill: 0,
  });
}

/** A trusted_root.json (media type v0.1) listing `logs`, and no CA, CT log or TSA. */
export function testTrustedRoot(logs: readonly TestRekorLog[]): string {
  return JSON.stringify({
    mediaType: "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
    tlogs: logs.map((l) => l.trustedRootEntry()),
    certificateAuthorities: [],
    ctlogs: [],
    timestampAuthorities: [],
  });
}

/** The in-toto statement bytes exactly as cosign v3 writes them for an image digest (protojson). */
export function cosignSignStatement(digest: string): Uint8Array {
  return encoder.encode(JSON.stringify({
    _type: "https://in-toto.io/Statement/v1",
    subject: [{ digest: { sha256: digest.replace(/^sha256:/, "") }, annotations: {} }],
    predicateType: COSIGN_SIGN_PREDICATE,
    predicate: {},
  }));
}

/** The DSSE pre-authentication encoding. */
export function preAuthEncoding(payloadType: string, payload: Uint8Array): Uint8Array {
  const head = encoder.encode(
    `DSSEv1 ${encoder.encode(payloadType).length} ${payloadType} ${payload.length} `,
  );
  const out = new Uint8Array(head.length + payload.length);
  out.set(head);
  out.set(payload, head.length);
  return out;
}

/** Options of {@linkcode signImageBundle}. */
export interface SignImageBundleOptions {
  /** The image digest the statement names. */
  digest: string;
  /** The publisher key. */
  publisher: TestKey;
  /** The log the entry goes into. */
  log: TestRekorLog;
  /** Unix seconds; default now. */
  integratedTime?: number;
  /** Replace the statement bytes (crafted negatives). */
  statement?: Uint8Array;
  /** Filler leaves appended after ours before the checkpoint (default 2). */
  after?: number;
  /** Sign the checkpoint with this key instead of the log's. */
  checkpointSigner?: KeyObject;
  /** Corrupt the first inclusion-proof hash. */
  badProof?: boolean;
  /** Omit the SET (the entry then relies on its inclusion proof only). */
  noSet?: boolean;
}

/** A cosign v3 bundle and what went into it. */
export interface SignedBundle {
  /** The bundle JSON text. */
  json: string;
  /** The parsed bundle (for crafting variants). */
  doc: Record<string, unknown>;
  /** The global log index (SET-covered). */
  logIndex: number;
  /** The tree (leaf) index. */
  treeIndex: number;
  integratedTime: number;
}

/** Signs an image digest like `cosign sign --key` (cosign v3, new bundle format) with a Rekor v1 upload. */
export function signImageBundle(options: SignImageBundleOptions): SignedBundle {
  const payloadType = "application/vnd.in-toto+json";
  const payload = options.statement ?? cosignSignStatement(options.digest);
  const sig = new Uint8Array(
    sign("sha256", preAuthEncoding(payloadType, payload), options.publisher.privateKey),
  );
  const envelope = { payload: b64(payload), payloadType, signatures: [{ sig: b64(sig), keyid: "" }] };
  const body = encoder.encode(JSON.stringify({
    apiVersion: "0.0.1",
    kind: "dsse",
    spec: {
      envelopeHash: { algorithm: "sha256", value: hex(sha256(encoder.encode(JSON.stringify(envelope)))) },
      payloadHash: { algorithm: "sha256", value: hex(sha256(payload)) },
      signatures: [{ signature: b64(sig), verifier: btoa(options.publisher.publicPem) }],
    },
  }));
  const log = options.log;
  const treeIndex = log.append(body);
  for (let i = 0; i < (options.after ?? 2); i++) log.append(encoder.encode(`{"after":${treeIndex}.${i}}`));
  const logIndex = log.indexOffset + treeIndex;
  const integratedTime = options.integratedTime ?? Math.floor(Date.now() / 1000);
  const size = log.size;
  const hashes = log.proof(treeIndex, size).map(b64);
  if (options.badProof === true && hashes.length > 0) {
    const first = hexBytes(hex(Uint8Array.from(atob(hashes[0] ?? ""), (c) => c.charCodeAt(0))));
    first[0] = (first[0] ?? 0) ^ 1;
    hashes[0] = b64(first);
  }
  const doc: Record<string, unknown> = {
    mediaType: BUNDLE_V03_MEDIA_TYPE,
    verificationMaterial: {
      publicKey: { hint: b64(sha256(spkiDer(options.publisher))) },
      tlogEntries: [{
        logIndex: String(logIndex),
        logId: { keyId: b64(hexBytes(log.logId)) },
        kindVersion: { kind: "dsse", version: "0.0.1" },
        integratedTime: String(integratedTime),
        ...(options.noSet === true
          ? {}
          : { inclusionPromise: { signedEntryTimestamp: log.set(body, integratedTime, logIndex) } }),
        inclusionProof: {
          logIndex: String(treeIndex),
          rootHash: b64(log.root(size)),
          treeSize: String(size),
          hashes,
          checkpoint: { envelope: log.checkpoint(size, options.checkpointSigner) },
        },
        canonicalizedBody: b64(body),
      }],
    },
    dsseEnvelope: envelope,
  };
  return { json: JSON.stringify(doc), doc, logIndex, treeIndex, integratedTime };
}

/** The image a referrer points at. */
export interface ReferrerSubject {
  mediaType: string;
  digest: string;
  size: number;
}

function digestOf(bytes: Uint8Array): string {
  return `sha256:${hex(sha256(bytes))}`;
}

/**
 * Pushes bundles as cosign v3 does on a registry without the referrers API: one referrer manifest per
 * bundle (artifactType and layer media type `application/vnd.dev.sigstore.bundle.v0.3+json`, empty
 * config, `subject` = the image, cosign's annotations), listed by an index tagged `sha256-<hex>` (the
 * referrers tag schema; replaced by each call).
 */
export async function pushBundleReferrers(
  clientOptions: RegistryClientOptions,
  repository: string,
  subject: ReferrerSubject,
  bundles: readonly string[],
): Promise<void> {
  using client = new RegistryClient(clientOptions);
  const ref = parseReference(repository);
  await client.putBlob(ref, {
    mediaType: "application/vnd.oci.empty.v1+json",
    digest: parseDigest(digestOf(EMPTY_CONFIG)),
    size: EMPTY_CONFIG.length,
  }, EMPTY_CONFIG);
  const annotations = {
    "dev.sigstore.bundle.content": "dsse-envelope",
    "dev.sigstore.bundle.predicateType": COSIGN_SIGN_PREDICATE,
  };
  const listed: Record<string, unknown>[] = [];
  for (const json of bundles) {
    const bytes = encoder.encode(json);
    const layer = { mediaType: BUNDLE_V03_MEDIA_TYPE, digest: digestOf(bytes), size: bytes.length };
    await client.putBlob(ref, { ...layer, digest: parseDigest(layer.digest) }, bytes);
    const manifest = encoder.encode(JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      artifactType: BUNDLE_V03_MEDIA_TYPE,
      config: {
        mediaType: "application/vnd.oci.empty.v1+json",
        digest: digestOf(EMPTY_CONFIG),
        size: EMPTY_CONFIG.length,
      },
      layers: [layer],
      subject,
      annotations,
    }));
    const d = await client.putManifest(ref, manifest);
    listed.push({ ...d, artifactType: BUNDLE_V03_MEDIA_TYPE, annotations });
  }
  await client.putManifest(
    ref,
    encoder.encode(JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: listed,
    })),
    { tag: `sha256-${subject.digest.replace(/^sha256:/, "")}` },
  );
}
