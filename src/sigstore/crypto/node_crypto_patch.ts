/**
 * Works around a Deno 2.9.6 `node:crypto` incompatibility that breaks `@sigstore/core`.
 *
 * Node's `crypto.verify(null, data, key, signature)` uses the key type's default digest (SHA-256
 * for EC and RSA keys, as OpenSSL reports it). Deno 2.9.6 throws "no default digest" instead, and
 * `@sigstore/core`'s `crypto.verify()` catches that and returns `false`, so every SCT, checkpoint and
 * DSSE signature made with an EC key fails to verify. `@sigstore/core` calls
 * `require("crypto").verify(...)` at call time, which in Deno is the same object as the default
 * export of `node:crypto`; this module replaces that one property. It is imported for its side
 * effect, first, by `bundle_verifier.ts`.
 *
 * Only the `null`/`undefined` algorithm case with an EC or RSA key is changed (to `"sha256"`,
 * exactly Node's behaviour); every other call goes to the original function unchanged.
 *
 * @module
 */
import crypto from "node:crypto";

type VerifyFn = typeof crypto.verify;

const ORIGINAL_VERIFY: VerifyFn = crypto.verify;
let installed = false;

/** The key types whose default digest is SHA-256 in Node (OpenSSL's default digest). */
const SHA256_DEFAULT_KEY_TYPES: ReadonlySet<string> = new Set(["ec", "rsa"]);

/** The asymmetric key type of a `verify()` key argument, or undefined when it cannot be told. */
function keyTypeOf(key: unknown): string | undefined {
  try {
    if (key instanceof crypto.KeyObject) return key.asymmetricKeyType;
    return crypto.createPublicKey(key as Parameters<typeof crypto.createPublicKey>[0]).asymmetricKeyType;
  } catch {
    // Not a key we can inspect: leave the call to the original function, which reports it.
    return undefined;
  }
}

/** `crypto.verify` with Node's default digest for EC and RSA keys when no algorithm is given. */
function patchedVerify(...args: unknown[]): unknown {
  const [algorithm, , key] = args;
  if (algorithm === null || algorithm === undefined) {
    const type = keyTypeOf(key);
    if (type !== undefined && SHA256_DEFAULT_KEY_TYPES.has(type)) {
      return Reflect.apply(ORIGINAL_VERIFY, crypto, ["sha256", ...args.slice(1)]);
    }
  }
  return Reflect.apply(ORIGINAL_VERIFY, crypto, args);
}

/**
 * True when this runtime's original `node:crypto.verify` rejects a `null` algorithm for an EC key
 * (the bug the patch works around). Probes with a fresh P-256 key.
 */
export function nodeCryptoVerifyNeedsPatch(): boolean {
  const { privateKey, publicKey } = crypto.generateKeyPairSync("ec", { namedCurve: "P-256" });
  const data = new TextEncoder().encode("dangerzone-image node:crypto probe");
  const signature = crypto.sign("sha256", data, privateKey);
  try {
    return ORIGINAL_VERIFY(null, data, publicKey, signature) !== true;
  } catch {
    return true;
  }
}

/**
 * Installs the patch on the shared `node:crypto` module object (idempotent). Called on import.
 *
 * @example
 * ```ts
 * import { installNodeCryptoPatch } from "./node_crypto_patch.ts";
 * installNodeCryptoPatch();
 * ```
 */
export function installNodeCryptoPatch(): void {
  if (installed) return;
  crypto.verify = patchedVerify as unknown as VerifyFn;
  installed = true;
}

installNodeCryptoPatch();
