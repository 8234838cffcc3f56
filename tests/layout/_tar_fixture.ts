/**
 * Test-only raw tar builder with full control over every header field, so hostile archives can
 * be made that no well-behaved writer would produce. Independent of src/layout's writer.
 *
 * @module
 */

/** One raw entry. */
export interface RawEntry {
  /** Name field (first 100 bytes). */
  name: string;
  /** Type flag character, default "0". */
  type?: string;
  /** Body bytes (default empty). */
  body?: Uint8Array;
  /** Declared size if different from the body length. */
  size?: number;
  /** Link target field. */
  linkname?: string;
  /** ustar prefix field. */
  prefix?: string;
  /** `gnu` writes the old GNU magic; default POSIX ustar. */
  magic?: "posix" | "gnu" | "none";
  /** Corrupt the checksum. */
  badChecksum?: boolean;
  /** Raw name bytes, overriding `name`. */
  nameBytes?: Uint8Array;
}

const enc = new TextEncoder();

function put(block: Uint8Array, offset: number, length: number, value: string | Uint8Array): void {
  const bytes = typeof value === "string" ? enc.encode(value) : value;
  block.set(bytes.subarray(0, length), offset);
}

function octal(value: number, length: number): string {
  return value.toString(8).padStart(length - 1, "0") + "\0";
}

/** A 512-byte header for `e`. */
export function header(e: RawEntry): Uint8Array {
  const block = new Uint8Array(512);
  put(block, 0, 100, e.nameBytes ?? e.name);
  put(block, 100, 8, octal(0o644, 8));
  put(block, 108, 8, octal(0, 8));
  put(block, 116, 8, octal(0, 8));
  put(block, 124, 12, octal(e.size ?? e.body?.length ?? 0, 12));
  put(block, 136, 12, octal(0, 12));
  put(block, 156, 1, e.type ?? "0");
  if (e.linkname !== undefined) put(block, 157, 100, e.linkname);
  const magic = e.magic ?? "posix";
  if (magic === "posix") put(block, 257, 8, "ustar\u000000");
  else if (magic === "gnu") put(block, 257, 8, "ustar  \u0000");
  if (e.prefix !== undefined) put(block, 345, 155, e.prefix);
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of block) sum += b;
  if (e.badChecksum) sum += 1;
  put(block, 148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
  return block;
}

function padded(body: Uint8Array): Uint8Array[] {
  const pad = (512 - (body.length % 512)) % 512;
  return pad === 0 ? [body] : [body, new Uint8Array(pad)];
}

/** Pax records body for `records`. */
export function paxBody(records: Record<string, string>): Uint8Array {
  let out = "";
  for (const [k, v] of Object.entries(records)) {
    const rec = ` ${k}=${v}\n`;
    const base = enc.encode(rec).length;
    let total = base + 1;
    while (base + String(total).length !== total) total = base + String(total).length;
    out += `${total}${rec}`;
  }
  return enc.encode(out);
}

/** A pax extended header entry (`x`) or global header (`g`). */
export function pax(records: Record<string, string>, type: "x" | "g" = "x"): RawEntry {
  return { name: "PaxHeader", type, body: paxBody(records) };
}

/** Concatenates entries into tar bytes; `end` (default true) appends two zero blocks. */
export function rawTar(entries: RawEntry[], options: { end?: boolean } = {}): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const e of entries) {
    parts.push(header(e));
    if (e.body !== undefined && e.body.length > 0) parts.push(...padded(e.body));
  }
  if (options.end ?? true) parts.push(new Uint8Array(1024));
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** sha256 hex of bytes. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const h = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return Array.from(h, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A readable stream over bytes, in chunks of `chunk` bytes (exercises boundary handling). */
export function streamOf(bytes: Uint8Array, chunk = 4096): ReadableStream<Uint8Array> {
  let off = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (off >= bytes.length) {
        controller.close();
        return;
      }
      controller.enqueue(bytes.slice(off, off + chunk));
      off += chunk;
    },
  });
}
