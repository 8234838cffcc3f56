/**
 * Private: the archive writer's file, written (and, where asked, hashed) on a worker thread, so that
 * reading the source (main thread) runs beside hashing and disk writes. Synchronous writes on the
 * worker reach several GB/s into the page cache where an async `FsFile.write` per chunk tops out near
 * 0.6 GB/s; every 256 MiB an `fdatasync` is started in the background, so the one fsync at the end
 * has only the tail left to flush.
 *
 * Buffers are handed off, never shared: the main thread fills one from a pool of four 1 MiB buffers,
 * transfers it, and the worker writes it and transfers it back, which bounds memory.
 *
 * The worker is built from the source of {@linkcode tarWorkerMain} (a Blob URL), so it survives
 * `deno bundle` and `deno compile` without a separate module file.
 *
 * @module
 */
import { DangerzoneError } from "../errors.ts";

type ToWorker =
  | { type: "open"; path: string }
  | { type: "data"; buffer: ArrayBuffer; length: number; hashed: boolean }
  | { type: "digest" }
  | { type: "finish" }
  | { type: "close" };

interface FromWorker {
  type: "opened" | "free" | "digest" | "finished" | "closed" | "error";
  buffer?: ArrayBuffer;
  sha256Hex?: string;
  name?: string;
  message?: string;
}

interface WorkerScope {
  onmessage: ((event: MessageEvent<ToWorker>) => void) | null;
  postMessage(message: FromWorker, transfer?: Transferable[]): void;
}

/** Size of each hand-off buffer. */
export const TAR_BUFFER_SIZE: number = 1024 * 1024;
const BUFFERS = 4;

/** The main-thread side of an archive file written by a worker. */
export class TarFileWorker {
  readonly #worker: Worker;
  readonly #free: ArrayBuffer[] = [];
  #allocated = 0;
  #waitingBuffer: ((b: ArrayBuffer) => void) | undefined;
  #replies: ((m: FromWorker) => void)[] = [];
  #failure: DangerzoneError | undefined;
  #onFailure: ((e: DangerzoneError) => void)[] = [];
  #terminated = false;

  private constructor(worker: Worker) {
    this.#worker = worker;
    worker.onmessage = (event: MessageEvent<FromWorker>) => this.#onMessage(event.data);
    worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      this.#fail(new DangerzoneError("INTERNAL", `archive writer thread failed: ${event.message}`));
    };
  }

  /** Starts the worker and creates (truncates) the file at `path`. */
  static async open(path: string): Promise<TarFileWorker> {
    const source = `(${tarWorkerMain.toString()})(self);`;
    const url = URL.createObjectURL(new Blob([source], { type: "application/javascript" }));
    let worker: Worker;
    try {
      worker = new Worker(url, { type: "module" });
    } finally {
      URL.revokeObjectURL(url);
    }
    const writer = new TarFileWorker(worker);
    try {
      await writer.#request({ type: "open", path });
    } catch (err) {
      writer.terminate();
      throw err;
    }
    return writer;
  }

  /** A free buffer of {@linkcode TAR_BUFFER_SIZE} bytes to fill (waits while all are being written). */
  async takeBuffer(): Promise<ArrayBuffer> {
    this.#throwIfFailed();
    const ready = this.#free.pop();
    if (ready !== undefined) return ready;
    if (this.#allocated < BUFFERS) {
      this.#allocated++;
      return new ArrayBuffer(TAR_BUFFER_SIZE);
    }
    return await new Promise<ArrayBuffer>((resolve, reject) => {
      this.#waitingBuffer = resolve;
      this.#onFailure.push(reject);
    });
  }

  /** Appends `length` bytes at the start of `buffer` (transferred); `hashed` adds them to the current digest. */
  write(buffer: ArrayBuffer, length: number, hashed: boolean): void {
    this.#throwIfFailed();
    this.#worker.postMessage({ type: "data", buffer, length, hashed } satisfies ToWorker, [buffer]);
  }

  /** The sha256 (hex) of the bytes written with `hashed` since the last call; starts a new digest. */
  async digest(): Promise<string> {
    return (await this.#request({ type: "digest" })).sha256Hex ?? "";
  }

  /** Waits until every byte is written, fsyncs and closes the file. */
  async finish(): Promise<void> {
    await this.#request({ type: "finish" });
    this.terminate();
  }

  /** Stops the worker (the file is closed with it). */
  terminate(): void {
    if (this.#terminated) return;
    this.#terminated = true;
    this.#worker.terminate();
  }

  #request(message: ToWorker): Promise<FromWorker> {
    this.#throwIfFailed();
    return new Promise<FromWorker>((resolve, reject) => {
      this.#replies.push(resolve);
      this.#onFailure.push(reject);
      this.#worker.postMessage(message);
    });
  }

  #onMessage(m: FromWorker): void {
    if (m.type === "free") {
      if (m.buffer === undefined) return;
      const waiting = this.#waitingBuffer;
      this.#waitingBuffer = undefined;
      if (waiting !== undefined) waiting(m.buffer);
      else this.#free.push(m.buffer);
      return;
    }
    if (m.type === "error") {
      const text = `${m.name ?? "Error"}: ${m.message ?? "unknown error"}`;
      this.#fail(
        /os error 28|no space/i.test(text)
          ? new DangerzoneError("DISK_FULL", "the disk is full while writing the archive", {
            cause: new Error(text),
            hint: "free some disk space and try again",
          })
          : new DangerzoneError("IO", "cannot write the archive", {
            cause: new Error(text),
            hint: "check the output directory's permissions and free space",
          }),
      );
      return;
    }
    this.#onFailure.shift();
    this.#replies.shift()?.(m);
  }

  #fail(err: DangerzoneError): void {
    if (this.#failure !== undefined) return;
    this.#failure = err;
    const rejects = this.#onFailure.splice(0);
    this.#replies = [];
    this.#waitingBuffer = undefined;
    for (const reject of rejects) reject(err);
  }

  #throwIfFailed(): void {
    if (this.#failure !== undefined) throw this.#failure;
    if (this.#terminated) throw new DangerzoneError("INTERNAL", "archive writer used after it stopped");
  }
}

/**
 * The worker's code. Self-contained (it runs from its own source text): no references to module
 * scope, only a dynamic import of `node:crypto`. Messages are handled in the order sent.
 */
function tarWorkerMain(scope: WorkerScope): void {
  const SYNC_EVERY = 256 * 1024 * 1024;
  let file: Deno.FsFile | undefined;
  let makeHash: (() => { update(b: Uint8Array): void; digest(enc: "hex"): string }) | undefined;
  let hash: { update(b: Uint8Array): void; digest(enc: "hex"): string } | undefined;
  let sinceSync = 0;
  let syncing: Promise<void> | undefined;
  const report = (err: unknown) => {
    scope.postMessage({
      type: "error",
      name: err instanceof Error ? err.name : "Error",
      message: err instanceof Error ? err.message : String(err),
    });
  };
  const open = async (path: string) => {
    const { createHash } = await import("node:crypto");
    makeHash = () => createHash("sha256");
    hash = makeHash();
    file = await Deno.open(path, { write: true, create: true, truncate: true, mode: 0o644 });
    scope.postMessage({ type: "opened" });
  };
  const finish = async () => {
    if (file === undefined) throw new Error("finish before open");
    await syncing;
    file.syncSync();
    file.close();
    file = undefined;
    scope.postMessage({ type: "finished" });
  };
  scope.onmessage = (event: MessageEvent<ToWorker>) => {
    const m = event.data;
    try {
      switch (m.type) {
        case "open":
          open(m.path).catch(report);
          return;
        case "data": {
          const f = file;
          if (f === undefined || hash === undefined) throw new Error("data before open");
          const bytes = new Uint8Array(m.buffer, 0, m.length);
          if (m.hashed) hash.update(bytes);
          let off = 0;
          while (off < bytes.byteLength) off += f.writeSync(bytes.subarray(off));
          sinceSync += m.length;
          if (sinceSync >= SYNC_EVERY && syncing === undefined) {
            // Start writeback in the background; the final fsync then has little left to do.
            sinceSync = 0;
            syncing = f.syncData().catch(() => {}).finally(() => (syncing = undefined));
          }
          scope.postMessage({ type: "free", buffer: m.buffer }, [m.buffer]);
          return;
        }
        case "digest": {
          if (hash === undefined || makeHash === undefined) throw new Error("digest before open");
          const hex = hash.digest("hex");
          hash = makeHash();
          scope.postMessage({ type: "digest", sha256Hex: hex });
          return;
        }
        case "finish":
          finish().catch(report);
          return;
        case "close":
          file?.close();
          file = undefined;
          scope.postMessage({ type: "closed" });
          return;
      }
    } catch (err) {
      report(err);
    }
  };
}
