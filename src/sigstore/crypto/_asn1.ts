/**
 * A minimal, strict DER reader for the two structures we parse ourselves: SubjectPublicKeyInfo and
 * ECDSA signatures. Private to `src/sigstore/`. Lengths must be definite and minimally encoded, and
 * every element must lie inside its parent; anything else is rejected.
 *
 * @module
 */

/** One DER element: its tag and where its contents start and end in the input. */
export interface DerElement {
  /** The identifier octet (single-byte tags only). */
  readonly tag: number;
  /** Offset of the first content byte. */
  readonly start: number;
  /** Offset just after the last content byte. */
  readonly end: number;
}

/** Thrown by the DER reader; callers turn it into a {@linkcode DangerzoneError} with their own code. */
export class DerFormatError extends Error {
  /** Creates a DER format error. */
  constructor(message: string) {
    super(message);
    this.name = "DerFormatError";
  }
}

/** Reads the element at `offset`, which must end at or before `limit`. */
export function readDer(bytes: Uint8Array, offset: number, limit: number = bytes.length): DerElement {
  const tag = bytes[offset];
  if (tag === undefined || offset >= limit) throw new DerFormatError("truncated DER element");
  if ((tag & 0x1f) === 0x1f) throw new DerFormatError("multi-byte DER tags are not supported");
  const first = bytes[offset + 1];
  if (first === undefined || offset + 1 >= limit) throw new DerFormatError("truncated DER length");
  let length: number;
  let start: number;
  if (first < 0x80) {
    length = first;
    start = offset + 2;
  } else {
    const count = first & 0x7f;
    if (count === 0 || count > 3) throw new DerFormatError("unsupported DER length form");
    length = 0;
    for (let i = 0; i < count; i++) {
      const b = bytes[offset + 2 + i];
      if (b === undefined) throw new DerFormatError("truncated DER length");
      if (i === 0 && b === 0) throw new DerFormatError("non-minimal DER length");
      length = length * 256 + b;
    }
    if (length < 0x80) throw new DerFormatError("non-minimal DER length");
    start = offset + 2 + count;
  }
  const end = start + length;
  if (end > limit) throw new DerFormatError("DER element overruns its container");
  return { tag, start, end };
}

/** Reads the element at `offset` and checks its tag. */
export function expectDer(bytes: Uint8Array, offset: number, tag: number, limit?: number): DerElement {
  const el = readDer(bytes, offset, limit);
  if (el.tag !== tag) {
    throw new DerFormatError(`expected DER tag 0x${tag.toString(16)}, found 0x${el.tag.toString(16)}`);
  }
  return el;
}

/** True when two byte arrays hold the same bytes. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}

/**
 * Converts a DER `ECDSA-Sig-Value` (SEQUENCE of two INTEGERs) into the fixed-width `r || s` form Web
 * Crypto expects. Strict: no trailing bytes, no negative or zero integers, no superfluous leading
 * zero bytes, no integer wider than the curve.
 */
export function ecdsaDerToRaw(der: Uint8Array, width: number): Uint8Array {
  const seq = expectDer(der, 0, 0x30);
  if (seq.end !== der.length) throw new DerFormatError("trailing bytes after the ECDSA signature");
  const r = expectDer(der, seq.start, 0x02, seq.end);
  const s = expectDer(der, r.end, 0x02, seq.end);
  if (s.end !== seq.end) throw new DerFormatError("trailing bytes inside the ECDSA signature");
  const out = new Uint8Array(width * 2);
  out.set(integerBytes(der.subarray(r.start, r.end), width), 0);
  out.set(integerBytes(der.subarray(s.start, s.end), width), width);
  return out;
}

/** The unsigned big-endian value of a DER INTEGER, left-padded to `width` bytes. */
function integerBytes(content: Uint8Array, width: number): Uint8Array {
  const first = content[0];
  if (first === undefined) throw new DerFormatError("empty DER INTEGER");
  if (first & 0x80) throw new DerFormatError("negative ECDSA signature integer");
  let value = content;
  if (first === 0) {
    const second = content[1];
    if (second === undefined) throw new DerFormatError("zero ECDSA signature integer");
    if ((second & 0x80) === 0) throw new DerFormatError("overlong ECDSA signature integer (leading zero)");
    value = content.subarray(1);
  }
  if (value.length > width) throw new DerFormatError("ECDSA signature integer wider than the curve");
  const out = new Uint8Array(width);
  out.set(value, width - value.length);
  return out;
}
