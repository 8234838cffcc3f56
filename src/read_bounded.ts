/**
 * Reads a whole file, but never more than a limit: an oversized or endless file (a FIFO, `/dev/zero`)
 * fails after `limit + 1` bytes instead of exhausting memory. Shared by every module that reads a user-named file (keys, trust roots, signature lists, bundles).
 *
 * @module
 */
import { DangerzoneError, type ErrorCode } from "./errors.ts";

/** Options of {@linkcode readFileBounded}. */
export interface ReadBoundedOptions {
  /** Largest accepted size in bytes. */
  limit: number;
  /** The code for a file over the limit. */
  tooLargeCode: ErrorCode;
  /** What the file is, for messages ("signature file"). */
  what: string;
}

/** Reads `path` completely if it holds at most `options.limit` bytes. */
export async function readFileBounded(path: string, options: ReadBoundedOptions): Promise<Uint8Array> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (cause) {
    const notFound = cause instanceof Deno.errors.NotFound;
    throw new DangerzoneError(
      "IO",
      `cannot read the ${options.what} ${path}: ${notFound ? "no such file" : String(cause)}`,
      {
        cause,
        hint: "check the path and its permissions",
      },
    );
  }
  try {
    const chunks: Uint8Array[] = [];
    let total = 0;
    const buf = new Uint8Array(64 * 1024);
    for (;;) {
      const n = await file.read(buf);
      if (n === null) break;
      total += n;
      if (total > options.limit) {
        throw new DangerzoneError(
          options.tooLargeCode,
          `the ${options.what} ${path} is larger than the ${options.limit}-byte limit (bounded input)`,
        );
      }
      chunks.push(buf.slice(0, n));
    }
    const out = new Uint8Array(total);
    let offset = 0;
    for (const c of chunks) {
      out.set(c, offset);
      offset += c.length;
    }
    return out;
  } catch (cause) {
    if (cause instanceof DangerzoneError) throw cause;
    throw new DangerzoneError("IO", `cannot read the ${options.what} ${path}: ${String(cause)}`, { cause });
  } finally {
    file.close();
  }
}
