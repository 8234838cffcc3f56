/**
 * Private: ECDSA (P-256, P-384) verification over a message *digest*, for bundles verified
 * against `sha256:DIGEST` instead of the artifact bytes (`node:crypto` and Web Crypto only verify
 * over the message itself). Plain affine arithmetic over BigInt: verification handles no secrets,
 * so constant time does not matter. Returns false on any malformed input, never throws.
 *
 * @module
 */
import type { KeyObject } from "node:crypto";

interface Curve {
  readonly p: bigint;
  readonly a: bigint;
  readonly n: bigint;
  readonly gx: bigint;
  readonly gy: bigint;
  readonly bits: number;
}

const CURVES: Readonly<Record<string, Curve>> = {
  "P-256": {
    p: 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn,
    a: 0xffffffff00000001000000000000000000000000fffffffffffffffffffffffcn,
    n: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
    gx: 0x6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296n,
    gy: 0x4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5n,
    bits: 256,
  },
  "P-384": {
    p: 0xfffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffffn,
    a: 0xfffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000fffffffcn,
    n: 0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
    gx: 0xaa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7n,
    gy: 0x3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5fn,
    bits: 384,
  },
};

type Point = { x: bigint; y: bigint } | null;

/** True when `key` is an EC key on a curve this module can verify prehashed signatures for. */
export function supportsPrehashed(key: KeyObject): boolean {
  return curveOf(key) !== undefined;
}

/** Verifies a DER ECDSA `signature` over `digest` (the already-hashed message) with `key`. */
export function verifyPrehashedEcdsa(
  key: KeyObject,
  digest: Uint8Array,
  signature: Uint8Array,
): boolean {
  const curve = curveOf(key);
  if (curve === undefined) return false;
  const jwk = key.export({ format: "jwk" });
  if (typeof jwk.x !== "string" || typeof jwk.y !== "string") return false;
  const q: Point = { x: toBigInt(base64UrlBytes(jwk.x)), y: toBigInt(base64UrlBytes(jwk.y)) };
  if (!onCurve(curve, q)) return false;
  const rs = parseDerSignature(signature);
  if (rs === undefined) return false;
  const { r, s } = rs;
  if (r <= 0n || r >= curve.n || s <= 0n || s >= curve.n) return false;
  let e = toBigInt(digest);
  const excess = digest.length * 8 - curve.bits;
  if (excess > 0) e >>= BigInt(excess);
  const w = modInverse(s, curve.n);
  const u1 = mod(e * w, curve.n);
  const u2 = mod(r * w, curve.n);
  const point = add(curve, multiply(curve, { x: curve.gx, y: curve.gy }, u1), multiply(curve, q, u2));
  return point !== null && mod(point.x, curve.n) === r;
}

function curveOf(key: KeyObject): Curve | undefined {
  if (key.type !== "public" || key.asymmetricKeyType !== "ec") return undefined;
  switch (key.asymmetricKeyDetails?.namedCurve) {
    case "prime256v1":
      return CURVES["P-256"];
    case "secp384r1":
      return CURVES["P-384"];
    default:
      return undefined;
  }
}

function mod(a: bigint, m: bigint): bigint {
  const r = a % m;
  return r < 0n ? r + m : r;
}

function modInverse(a: bigint, m: bigint): bigint {
  let [oldR, r] = [mod(a, m), m];
  let [oldS, s] = [1n, 0n];
  while (r !== 0n) {
    const q = oldR / r;
    [oldR, r] = [r, oldR - q * r];
    [oldS, s] = [s, oldS - q * s];
  }
  return mod(oldS, m);
}

function onCurve(c: Curve, pt: Point): boolean {
  if (pt === null || pt.x >= c.p || pt.y >= c.p) return false;
  const b = mod(pt.y * pt.y - (pt.x * pt.x * pt.x + c.a * pt.x), c.p);
  // b is the curve constant; check it against the generator's.
  const bg = mod(c.gy * c.gy - (c.gx * c.gx * c.gx + c.a * c.gx), c.p);
  return b === bg;
}

function add(c: Curve, p1: Point, p2: Point): Point {
  if (p1 === null) return p2;
  if (p2 === null) return p1;
  let lambda: bigint;
  if (p1.x === p2.x) {
    if (mod(p1.y + p2.y, c.p) === 0n) return null;
    lambda = mod((3n * p1.x * p1.x + c.a) * modInverse(2n * p1.y, c.p), c.p);
  } else {
    lambda = mod((p2.y - p1.y) * modInverse(p2.x - p1.x, c.p), c.p);
  }
  const x = mod(lambda * lambda - p1.x - p2.x, c.p);
  const y = mod(lambda * (p1.x - x) - p1.y, c.p);
  return { x, y };
}

function multiply(c: Curve, pt: Point, k: bigint): Point {
  let result: Point = null;
  let addend = pt;
  let scalar = k;
  while (scalar > 0n) {
    if (scalar & 1n) result = add(c, result, addend);
    addend = add(c, addend, addend);
    scalar >>= 1n;
  }
  return result;
}

function toBigInt(bytes: Uint8Array): bigint {
  let out = 0n;
  for (const b of bytes) out = (out << 8n) | BigInt(b);
  return out;
}

function base64UrlBytes(text: string): Uint8Array {
  const std = text.replaceAll("-", "+").replaceAll("_", "/");
  const bin = atob(std + "=".repeat((4 - (std.length % 4)) % 4));
  return Uint8Array.from(bin, (ch) => ch.charCodeAt(0));
}

/** Strict DER `SEQUENCE { INTEGER r, INTEGER s }` with short-form lengths. */
function parseDerSignature(der: Uint8Array): { r: bigint; s: bigint } | undefined {
  if (der.length < 8 || der[0] !== 0x30 || der[1] !== der.length - 2) return undefined;
  let offset = 2;
  const ints: bigint[] = [];
  for (let i = 0; i < 2; i++) {
    if (der[offset] !== 0x02) return undefined;
    const len = der[offset + 1];
    if (len === undefined || len === 0 || len > 0x7f || offset + 2 + len > der.length) return undefined;
    const value = der.subarray(offset + 2, offset + 2 + len);
    const first = value[0] ?? 0;
    const second = value[1] ?? 0;
    if (first & 0x80) return undefined; // negative
    if (len > 1 && first === 0 && (second & 0x80) === 0) return undefined; // not minimal
    ints.push(toBigInt(value));
    offset += 2 + len;
  }
  const [r, s] = ints;
  if (offset !== der.length || r === undefined || s === undefined) return undefined;
  return { r, s };
}
