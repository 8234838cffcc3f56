/**
 * Progress of long steps (download, load) on stderr: a one-line bar with bytes, rate and ETA on a
 * terminal, or one NDJSON event per update with `--json` (stdout stays one JSON document). Updates are
 * throttled; the first and the final update of a phase are always written.
 *
 * @module
 */
import { SCHEMA_VERSION } from "../schema_version.ts";

/** A phase that reports progress. */
export type ProgressPhase =
  /** Bytes received from the registry. */
  | "download"
  /** Bytes of an archive verified and unpacked into a staging layout (load-archive, local podman). */
  | "unpack"
  /** Bytes the runtime took in. */
  | "load"
  /** Bytes of an image copied into another registry (mirror). */
  | "upload";

/** One NDJSON progress event (a line on stderr under `--json`). */
export interface ProgressEvent {
  /** The contract version (`schemas/progress.schema.json`). */
  schemaVersion: typeof SCHEMA_VERSION;
  /** Always `progress`. */
  event: "progress";
  /** The phase. */
  phase: ProgressPhase;
  /** Bytes done. */
  done: number;
  /** Bytes in the phase. */
  total: number;
  /**
   * Average bytes per second since the phase's first update (0 at first). Bytes a resumed download
   * already had at that update do not count as speed.
   */
  rate: number;
  /** Estimated seconds left, or null when unknown. */
  eta: number | null;
  /** True on the phase's last event. */
  final: boolean;
}

/** How progress is shown. */
export type ProgressMode = "tty" | "ndjson" | "none";

/** Options of {@linkcode createProgress}. */
export interface ProgressOptions {
  /** `tty`: a redrawn bar; `ndjson`: event lines; `none`: nothing. */
  mode: ProgressMode;
  /** Where text goes (default: stderr). */
  write?: (text: string) => void;
  /** Milliseconds clock (default `performance.now`). */
  now?: () => number;
  /** Least milliseconds between two writes (default 100 for tty, 500 for ndjson). */
  intervalMs?: number;
  /** Bar width in characters (default 24). */
  width?: number;
}

/** Receives the progress of one phase at a time. */
export interface Progress {
  /** Starts a phase of `total` bytes (ends the previous one). */
  start(phase: ProgressPhase, total: number): void;
  /** Sets the bytes done of the current phase. */
  update(done: number): void;
  /** Ends the current phase (writes its final state). */
  end(): void;
}

/**
 * A progress reporter.
 *
 * @example
 * ```ts
 * import { createProgress } from "./progress.ts";
 * const lines: string[] = [];
 * const p = createProgress({ mode: "ndjson", write: (t) => lines.push(t) });
 * p.start("download", 100);
 * p.update(100);
 * p.end();
 * ```
 */
export function createProgress(options: ProgressOptions): Progress {
  const write = options.write ?? writeStderr;
  const now = options.now ?? (() => performance.now());
  const interval = options.intervalMs ?? (options.mode === "tty" ? 100 : 500);
  const width = options.width ?? 24;
  let phase: ProgressPhase | undefined;
  let total = 0;
  let done = 0;
  let started = 0;
  // the rate counts from the first update: bytes a resumed download already had are no speed
  let baseDone: number | undefined;
  let baseTime = 0;
  let lastWrite = -Infinity;

  function event(final: boolean): ProgressEvent {
    const seconds = (now() - started) / 1000;
    const sinceBase = (now() - baseTime) / 1000;
    const rate = baseDone !== undefined && done > baseDone && sinceBase > 0
      ? Math.round((done - baseDone) / sinceBase)
      : seconds > 0
      ? Math.round(done / seconds)
      : 0;
    const eta = final ? 0 : rate > 0 ? Math.max(0, Math.round((total - done) / rate)) : null;
    return {
      schemaVersion: SCHEMA_VERSION,
      event: "progress",
      phase: phase ?? "download",
      done,
      total,
      rate,
      eta,
      final,
    };
  }

  function emit(final: boolean): void {
    if (phase === undefined || options.mode === "none") return;
    lastWrite = now();
    const e = event(final);
    if (options.mode === "ndjson") {
      write(`${JSON.stringify(e)}\n`);
      return;
    }
    write(`\r${formatBar(e, width)}\x1b[K${final ? "\n" : ""}`);
  }

  return {
    start(next, bytes) {
      if (phase !== undefined) emit(true);
      phase = next;
      total = bytes;
      done = 0;
      started = now();
      baseDone = undefined;
      emit(false);
    },
    update(bytes) {
      if (phase === undefined) return;
      done = Math.min(bytes, total);
      if (baseDone === undefined) {
        baseDone = done;
        baseTime = now();
      }
      if (now() - lastWrite >= interval) emit(false);
    },
    end() {
      if (phase === undefined) return;
      done = total;
      emit(true);
      phase = undefined;
    },
  };
}

/** The bar line of a terminal: `download [#####.....]  45%  450.0 MiB / 1.0 GiB  120.3 MiB/s  ETA 0:05`. */
function formatBar(e: ProgressEvent, width = 24): string {
  const fraction = e.total > 0 ? e.done / e.total : 1;
  const filled = Math.round(fraction * width);
  const bar = "#".repeat(filled) + ".".repeat(width - filled);
  const percent = `${Math.floor(fraction * 100)}%`.padStart(4);
  const eta = e.eta === null ? "--:--" : formatDuration(e.eta);
  return `${e.phase.padEnd(8)} [${bar}] ${percent}  ${formatBytes(e.done)} / ${formatBytes(e.total)}  ` +
    `${formatBytes(e.rate)}/s  ${e.final ? "done" : `ETA ${eta}`}`;
}

/** `1.5 GiB`, `12.0 MiB`, `512 B`. */
function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}

function formatDuration(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  const mm = h > 0 ? String(m).padStart(2, "0") : String(m);
  return `${h > 0 ? `${h}:` : ""}${mm}:${String(s).padStart(2, "0")}`;
}

function writeStderr(text: string): void {
  const bytes = new TextEncoder().encode(text);
  let off = 0;
  while (off < bytes.length) off += Deno.stderr.writeSync(bytes.subarray(off));
}
