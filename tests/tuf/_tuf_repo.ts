/**
 * A TUF repository the tests generate: ed25519 keys (node:crypto), metadata built with
 * `@tufjs/models` and signed over its canonical JSON, consistent snapshots, and a small loopback
 * static server (a TUF repository is static files; the server also injects the faults a CDN can
 * serve: an endless body, a missing file, a tampered target).
 *
 * @module
 */
import crypto from "node:crypto";
import { Buffer } from "node:buffer";
import { Metadata, Root, Signature, Snapshot, Targets, Timestamp } from "@tufjs/models";

/** One ed25519 signing key. */
export interface TufKey {
  id: string;
  publicHex: string;
  privateKey: crypto.KeyObject;
}

/** A fresh ed25519 key; its ID is the sha256 of its public key (any unique string works for TUF). */
export function tufKey(): TufKey {
  const { publicKey, privateKey } = crypto.generateKeyPairSync("ed25519");
  const spki = publicKey.export({ format: "der", type: "spki" });
  const publicHex = Buffer.from(spki.subarray(spki.length - 32)).toString("hex");
  return { id: crypto.createHash("sha256").update(publicHex).digest("hex"), publicHex, privateKey };
}

const keyJson = (k: TufKey) => ({ keytype: "ed25519", scheme: "ed25519", keyval: { public: k.publicHex } });

/** Signs `signed` (a plain `signed` object of the given kind) with `keys`; returns the file bytes. */
export function signMetadata(
  kind: "root" | "timestamp" | "snapshot" | "targets",
  signed: Record<string, unknown>,
  keys: readonly TufKey[],
): Uint8Array {
  // deno-lint-ignore no-explicit-any -- the models' fromJSON take their own JSON type
  const json = signed as any;
  const model = kind === "root"
    ? Root.fromJSON(json)
    : kind === "timestamp"
    ? Timestamp.fromJSON(json)
    : kind === "snapshot"
    ? Snapshot.fromJSON(json)
    : Targets.fromJSON(json);
  const md = new Metadata(model);
  for (const k of keys) {
    md.sign((data) =>
      new Signature({ keyID: k.id, sig: crypto.sign(null, data, k.privateKey).toString("hex") })
    );
  }
  return new TextEncoder().encode(JSON.stringify(md.toJSON(), null, 1));
}

/** ISO date `days` from now (negative: in the past), without milliseconds as TUF writes it. */
export function inDays(days: number): string {
  return new Date(Date.now() + days * 86_400_000).toISOString().replace(/\.\d{3}Z$/, "Z");
}

const sha256 = (b: Uint8Array) => crypto.createHash("sha256").update(b).digest("hex");

/** Roles' keys of one root version. */
export interface RootKeys {
  root: TufKey[];
  rootThreshold: number;
  targets: TufKey;
  snapshot: TufKey;
  timestamp: TufKey;
}

/**
 * The repository: call {@linkcode TestTufRepo.publishRoot} and {@linkcode TestTufRepo.publish} to put
 * files in place, {@linkcode TestTufRepo.serve} to serve them on loopback.
 */
export class TestTufRepo {
  /** Served files by path (`/1.root.json`, `/timestamp.json`, `/targets/<sha>.trusted_root.json`). */
  readonly files = new Map<string, Uint8Array>();
  /** Paths answered with an endless body. */
  readonly endless = new Set<string>();
  /** Paths answered with headers and then no bytes until the client gives up (at most 10 s). */
  readonly stalled = new Set<string>();
  /** Paths whose response headers come only after 2 s. */
  readonly slowHeaders = new Set<string>();
  /** Every path requested. */
  readonly requested: string[] = [];
  keys: RootKeys;
  rootVersion = 0;
  /** The current signed root file. */
  rootBytes: Uint8Array = new Uint8Array();
  #version = 0;

  constructor(rootThreshold = 1, rootKeyCount = 1) {
    this.keys = {
      root: Array.from({ length: rootKeyCount }, tufKey),
      rootThreshold,
      targets: tufKey(),
      snapshot: tufKey(),
      timestamp: tufKey(),
    };
    this.publishRoot({});
  }

  /**
   * Publishes the next root version with `next` keys (default: the current ones), signed by the
   * previous root keys (`signers.previous`, default all) and the new ones (`signers.next`, default all).
   */
  publishRoot(
    options: {
      next?: Partial<RootKeys>;
      previousSigners?: TufKey[];
      nextSigners?: TufKey[];
      expires?: string;
    },
  ): Uint8Array {
    const previous = this.keys;
    const next: RootKeys = { ...previous, ...options.next };
    const keys: Record<string, unknown> = {};
    for (const k of [...next.root, next.targets, next.snapshot, next.timestamp]) keys[k.id] = keyJson(k);
    this.rootVersion += 1;
    const signed = {
      _type: "root",
      "spec_version": "1.0.31",
      version: this.rootVersion,
      expires: options.expires ?? inDays(365),
      "consistent_snapshot": true,
      keys,
      roles: {
        root: { keyids: next.root.map((k) => k.id), threshold: next.rootThreshold },
        targets: { keyids: [next.targets.id], threshold: 1 },
        snapshot: { keyids: [next.snapshot.id], threshold: 1 },
        timestamp: { keyids: [next.timestamp.id], threshold: 1 },
      },
    };
    const signers = new Map<string, TufKey>();
    for (const k of options.previousSigners ?? (this.rootVersion === 1 ? [] : previous.root)) {
      signers.set(k.id, k);
    }
    for (const k of options.nextSigners ?? next.root) signers.set(k.id, k);
    const bytes = signMetadata("root", signed, [...signers.values()]);
    this.files.set(`/${this.rootVersion}.root.json`, bytes);
    this.keys = next;
    this.rootBytes = bytes;
    return bytes;
  }

  /**
   * Publishes targets, snapshot and timestamp for `target` (the trusted_root.json bytes). Options
   * override versions and expiry per role, or the target's declared bytes (to lie about its hash).
   */
  publish(
    target: Uint8Array,
    options: {
      version?: number;
      targetsVersion?: number;
      snapshotVersion?: number;
      timestampVersion?: number;
      expires?: Partial<Record<"targets" | "snapshot" | "timestamp", string>>;
      declaredTarget?: Uint8Array;
    } = {},
  ): void {
    this.#version = options.version ?? this.#version + 1;
    const tv = options.targetsVersion ?? this.#version;
    const sv = options.snapshotVersion ?? this.#version;
    const declared = options.declaredTarget ?? target;
    const targets = signMetadata("targets", {
      _type: "targets",
      "spec_version": "1.0.31",
      version: tv,
      expires: options.expires?.targets ?? inDays(30),
      targets: { "trusted_root.json": { length: declared.length, hashes: { sha256: sha256(declared) } } },
    }, [this.keys.targets]);
    this.files.set(`/${tv}.targets.json`, targets);
    this.files.set(`/targets/${sha256(declared)}.trusted_root.json`, target);
    const snapshot = signMetadata("snapshot", {
      _type: "snapshot",
      "spec_version": "1.0.31",
      version: sv,
      expires: options.expires?.snapshot ?? inDays(30),
      meta: { "targets.json": { version: tv } },
    }, [this.keys.snapshot]);
    this.files.set(`/${sv}.snapshot.json`, snapshot);
    this.files.set(
      "/timestamp.json",
      signMetadata("timestamp", {
        _type: "timestamp",
        spec_version: "1.0.31",
        version: options.timestampVersion ?? this.#version,
        expires: options.expires?.timestamp ?? inDays(1),
        meta: {
          "snapshot.json": { version: sv, length: snapshot.length, hashes: { sha256: sha256(snapshot) } },
        },
      }, [this.keys.timestamp]),
    );
  }

  /** Serves the files on 127.0.0.1 (over TLS with `tls`); the URL ends with `/`. */
  serve(tls?: { cert: string; key: string }): { url: string; close: () => Promise<void> } & AsyncDisposable {
    const listen = { hostname: "127.0.0.1", port: 0, onListen() {}, ...(tls ?? {}) };
    const server = Deno.serve(listen, async (req) => {
      const path = new URL(req.url).pathname;
      this.requested.push(path);
      if (this.slowHeaders.has(path)) await new Promise((resolve) => setTimeout(resolve, 2_000));
      if (this.endless.has(path)) {
        const chunk = new Uint8Array(64 * 1024).fill(0x20);
        let sent = 0;
        return new Response(
          new ReadableStream({
            pull(c) {
              // bounded so a client that ignores lengths still ends the test (64 MiB)
              if (sent++ > 1024) c.close();
              else c.enqueue(chunk);
            },
          }),
        );
      }
      if (this.stalled.has(path)) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        return new Response(
          new ReadableStream({
            start(c) {
              timer = setTimeout(() => c.close(), 10_000);
            },
            cancel() {
              clearTimeout(timer);
            },
          }),
        );
      }
      const body = this.files.get(path);
      return body === undefined ? new Response("not found", { status: 404 }) : new Response(body.slice());
    });
    const close = async () => {
      await server.shutdown();
    };
    const scheme = tls === undefined ? "http" : "https";
    return { url: `${scheme}://127.0.0.1:${server.addr.port}/`, close, [Symbol.asyncDispose]: close };
  }
}
