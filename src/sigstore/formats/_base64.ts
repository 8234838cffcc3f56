/**
 * Strict standard base64 (RFC 4648 section 4) for untrusted input: the alphabet only, no whitespace,
 * correct padding, and canonical trailing bits. Private to `src/sigstore/`.
 *
 * @module
 */

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const LOOKUP = new Int16Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) LOOKUP[ALPHABET.charCodeAt(i)] = i;

/** Decodes strict base64, or returns `null` when the text is not canonical standard base64. */
export function decodeBase64Strict(untrusted: string): Uint8Array | null {
  if (untrusted.length % 4 !== 0) return null;
  let pad = 0;
  if (untrusted.endsWith("==")) pad = 2;
  else if (untrusted.endsWith("=")) pad = 1;
  const out = new Uint8Array((untrusted.length / 4) * 3 - pad);
  let o = 0;
  for (let i = 0; i < untrusted.length; i += 4) {
    const last = i + 4 === untrusted.length;
    const v: number[] = [];
    for (let j = 0; j < 4; j++) {
      const c = untrusted.charCodeAt(i + j);
      if (c === 0x3d && last && j >= 4 - pad) {
        v.push(0);
        continue;
      }
      const d = c < 128 ? (LOOKUP[c] ?? -1) : -1;
      if (d < 0) return null;
      v.push(d);
    }
    const [a = 0, b = 0, c = 0, d = 0] = v;
    const n = (a << 18) | (b << 12) | (c << 6) | d;
    if (last && pad === 2 && (b & 0x0f) !== 0) return null;
    if (last && pad === 1 && (c & 0x03) !== 0) return null;
    out[o++] = (n >> 16) & 0xff;
    if (o < out.length) out[o++] = (n >> 8) & 0xff;
    if (o < out.length) out[o++] = n & 0xff;
  }
  return out;
}

/** Encodes bytes as standard padded base64. */
export function encodeBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}
