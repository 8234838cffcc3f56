/**
 * Fixtures for the runtime tests: archives built from the shared umoci builders, lazily pulled file
 * streams, and fake runtime binaries (shell scripts) for timeouts and odd output.
 *
 * @module
 */
import { join } from "node:path";
import type { BuiltImage, BuiltIndex } from "../_helpers/images.ts";
import { runCommand } from "../_helpers/process.ts";

const REF_NAME = "org.opencontainers.image.ref.name";

/**
 * Writes an oci-archive tar (`tar -C layout -cf`) of `image` whose `index.json` lists only that image,
 * named `refName` (or unnamed when undefined), and returns its path.
 */
export async function ociArchive(
  dir: string,
  image: BuiltImage | BuiltIndex,
  refName: string | undefined,
): Promise<string> {
  const stage = join(dir, `stage-${crypto.randomUUID()}`);
  await runCommand("cp", ["-a", image.layoutDir, stage]);
  const entry: Record<string, unknown> = {
    mediaType: image.mediaType,
    digest: image.digest,
    size: image.size,
  };
  if (refName !== undefined) entry.annotations = { [REF_NAME]: refName };
  await Deno.writeTextFile(
    join(stage, "index.json"),
    JSON.stringify({ schemaVersion: 2, manifests: [entry] }),
  );
  const tar = `${stage}.tar`;
  await runCommand("tar", ["-C", stage, "-cf", tar, "oci-layout", "index.json", "blobs"]);
  await Deno.remove(stage, { recursive: true });
  return tar;
}

/** Writes a docker-archive tar of `image` named `name` with skopeo and returns its path. */
export async function dockerArchive(dir: string, image: BuiltImage, name: string): Promise<string> {
  const tar = join(dir, `docker-${crypto.randomUUID()}.tar`);
  await runCommand("skopeo", [
    "copy",
    "-q",
    `oci:${image.layoutDir}:${image.name}`,
    `docker-archive:${tar}:${name}`,
  ]);
  return tar;
}

/** A stream over a file that reads one `chunkSize` chunk per pull and counts pulls. */
export interface LazyFileStream {
  /** The stream to hand to `load()`. */
  stream: ReadableStream<Uint8Array>;
  /** How many chunks were pulled so far. */
  readonly pulls: number;
  /** True once the consumer cancelled the stream. */
  readonly cancelled: boolean;
}

/** Options of {@linkcode lazyFileStream}. */
export interface LazyFileStreamOptions {
  /** Bytes per chunk (default 16 KiB). */
  chunkSize?: number;
  /** Called before chunk number `pull` (0-based) is read. */
  onPull?: (pull: number) => Promise<void> | void;
  /** Error the stream with this instead of closing it at the end of the file. */
  failAtEnd?: Error;
}

/** A lazily read file stream (highWaterMark 0: nothing is read before it is asked for). */
export function lazyFileStream(path: string, options: LazyFileStreamOptions = {}): LazyFileStream {
  const chunkSize = options.chunkSize ?? 16 * 1024;
  let file: Deno.FsFile | undefined;
  let pulls = 0;
  let cancelled = false;
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      await options.onPull?.(pulls);
      pulls++;
      file ??= await Deno.open(path, { read: true });
      const buf = new Uint8Array(chunkSize);
      const n = await file.read(buf);
      if (n === null) {
        file.close();
        file = undefined;
        if (options.failAtEnd !== undefined) controller.error(options.failAtEnd);
        else controller.close();
        return;
      }
      controller.enqueue(buf.subarray(0, n));
    },
    cancel() {
      cancelled = true;
      file?.close();
      file = undefined;
    },
  }, { highWaterMark: 0 });
  return {
    stream,
    get pulls() {
      return pulls;
    },
    get cancelled() {
      return cancelled;
    },
  };
}

/**
 * True when a process whose environment holds `envEntry` (e.g. `CONTAINERS_STORAGE_CONF=/tmp/…`) runs with
 * `word` among its arguments (e.g. `load`).
 */
export async function processRunning(envEntry: string, word: string): Promise<boolean> {
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const cmdline = (await Deno.readTextFile(`/proc/${entry.name}/cmdline`)).split("\0");
      if (!cmdline.includes(word)) continue;
      const environ = (await Deno.readTextFile(`/proc/${entry.name}/environ`)).split("\0");
      if (environ.includes(envEntry)) return true;
    } catch {
      // the process ended meanwhile
    }
  }
  return false;
}

/**
 * Writes an executable shell script to `dir/name` and returns its path (a fake runtime binary). The final
 * file is written by `install`, never through a descriptor of this process: a child forked meanwhile by a
 * parallel test would inherit that descriptor and make exec fail with "text file busy".
 */
export async function fakeRuntime(dir: string, name: string, script: string): Promise<string> {
  const path = join(dir, name);
  const source = join(dir, `${name}.src`);
  await Deno.writeTextFile(source, `#!/bin/sh\n${script}\n`);
  await runCommand("install", ["-m", "0755", source, path]);
  return path;
}
