/**
 * Private: deterministic ustar headers for the archive writer. Mode 0644 (files) / 0755
 * (directories), uid/gid 0, empty user and group names, mtime 0, POSIX `ustar\0` magic. Sizes
 * over 8 GiB get a pax `size` record plus a base-256 size field (read by GNU tar, Go, Python,
 * libarchive).
 *
 * @module
 */

const BLOCK = 512;
const MAX_OCTAL_SIZE = 0o77777777777;
const enc = new TextEncoder();

function put(block: Uint8Array, offset: number, value: string): void {
  block.set(enc.encode(value), offset);
}

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, "0")}\0`;
}

function ustar(name: string, typeflag: "0" | "5" | "x", size: number): Uint8Array {
  const nameBytes = enc.encode(name);
  if (nameBytes.length > 100) throw new RangeError(`tar entry name '${name}' is longer than 100 bytes`);
  const block = new Uint8Array(BLOCK);
  block.set(nameBytes, 0);
  put(block, 100, octal(typeflag === "5" ? 0o755 : 0o644, 8));
  put(block, 108, octal(0, 8));
  put(block, 116, octal(0, 8));
  if (size <= MAX_OCTAL_SIZE) {
    put(block, 124, octal(size, 12));
  } else {
    block[124] = 0x80;
    let v = size;
    for (let i = 135; i > 124; i--) {
      block[i] = v % 256;
      v = Math.floor(v / 256);
    }
  }
  put(block, 136, octal(0, 12));
  put(block, 156, typeflag);
  put(block, 257, "ustar\u000000");
  put(block, 329, octal(0, 8));
  put(block, 337, octal(0, 8));
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of block) sum += b;
  put(block, 148, `${sum.toString(8).padStart(6, "0")}\0 `);
  return block;
}

/** The bytes of `n` zero padding after a body of `size` bytes. */
export function paddingFor(size: number): Uint8Array {
  return new Uint8Array((BLOCK - (size % BLOCK)) % BLOCK);
}

/** The header block(s) of a regular file or directory entry. */
export function entryHeader(name: string, type: "file" | "directory", size: number): Uint8Array {
  if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`invalid tar entry size ${size}`);
  const main = ustar(name, type === "directory" ? "5" : "0", size);
  if (size <= MAX_OCTAL_SIZE) return main;
  const record = ` size=${size}\n`;
  let len = record.length + 1;
  while (record.length + String(len).length !== len) len = record.length + String(len).length;
  const body = enc.encode(`${len}${record}`);
  const paxName = `./PaxHeaders/${name.split("/").pop() ?? ""}`.slice(0, 100);
  const out = new Uint8Array(BLOCK * 2 + main.length);
  out.set(ustar(paxName, "x", body.length), 0);
  out.set(body, BLOCK);
  out.set(main, BLOCK * 2);
  return out;
}

/** The end-of-archive marker: two zero blocks. */
export const END_OF_ARCHIVE: Uint8Array = new Uint8Array(BLOCK * 2);
