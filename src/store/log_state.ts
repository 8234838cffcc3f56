/**
 * Anti-rollback state (DESIGN rule 5). Log indexes are per log (Rekor v2 shards start again at 0), so
 * the highest installed index is kept per log ID in `<data-dir>/signatures/log_state.json` (ours);
 * `<data-dir>/signatures/last_log_index` (decimal text, what Dangerzone reads) is kept in step for the
 * production Rekor log and is read as that log's floor when our state file is absent.
 *
 * Only verified signatures count: the functions take verified signatures of either format (key-based
 * legacy cosign signatures and cosign v3 Sigstore bundles), whose log positions come only from signed
 * data (SET, or inclusion proof and checkpoint). A bundle's entries in a Rekor v2 log are kept under
 * that log's declared ID, never mixed with another log's indexes, and never written to
 * `last_log_index` (whose index space is the production Rekor v1 log's).
 *
 * @module
 */
import { join } from "../fs_path.ts";
import { DangerzoneError } from "../errors.ts";
import { isVerifiedBundleSignature } from "../sigstore/cosign/verified_bundle_signature.ts";
import {
  type LogPosition,
  type VerifiedImageSignature,
  verifiedLogPositions,
} from "../sigstore/cosign/policy.ts";
import { readOwnFileBounded } from "../read_bounded.ts";
import { writeFileAtomic } from "./_atomic_write.ts";
import { ensureOwnDirectory, ownDirectoryExists } from "./data_dir.ts";

/** The production Rekor log ID (sha256 of the pinned `rekor.pub` SPKI): what `last_log_index` is about. */
export const PRODUCTION_REKOR_LOG_ID = "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d";

/** What is recorded for one log. */
export interface LogStateEntry {
  /** The highest installed log index in this log. */
  readonly logIndex: number;
  /** Its integration time (Unix seconds), signed by the log. */
  readonly integratedTime: number;
  /** The image digest it belongs to. */
  readonly digest: string;
  /** When it was recorded (ISO 8601). */
  readonly updatedAt: string;
}

/** The state as read from disk. */
export interface LogState {
  /** Per log ID (hex). */
  readonly logs: ReadonlyMap<string, LogStateEntry>;
  /** `last_log_index`, if present. */
  readonly legacyLastLogIndex: number | null;
}

/** The result of a rollback check that did not refuse. */
export type RollbackVerdict = "newer" | "up-to-date";

/** Options of {@linkcode LogStateStore}. */
export interface LogStateOptions {
  /** The log `last_log_index` is about (default: the production Rekor log). */
  legacyLogId?: string;
}

/**
 * When the installed image was signed, for a state that does not say (Dangerzone's `last_log_index`
 * holds an index but no time): derived from the installed image's stored, verified signatures, or why
 * that was not possible.
 */
export type InstalledTime = { readonly integratedTime: number } | { readonly unknown: string };

/** Options of {@linkcode checkRollback}. */
export interface CheckRollbackOptions extends LogStateOptions {
  /**
   * The installed image's signed integration time when the state has none (see
   * {@linkcode needsInstalledTime}). Absent or unknown: a candidate whose only verified entries are in
   * logs the state does not know is refused, since nothing says it is later than what is installed.
   */
  installedTime?: InstalledTime | undefined;
}

/** The anti-rollback state of one data directory. */
export class LogStateStore {
  readonly #dataDir: string;
  readonly #dir: string;
  readonly #legacyLogId: string;

  /**
   * Opens the state of `dataDir`.
   *
   * @example
   * ```ts ignore
   * const state = new LogStateStore(dataDir);
   * const verdict = await state.check(verified); // throws ROLLBACK
   * await state.record(verified);
   * ```
   */
  constructor(dataDir: string, options: LogStateOptions = {}) {
    this.#dataDir = dataDir;
    this.#dir = join(dataDir, "signatures");
    this.#legacyLogId = options.legacyLogId ?? PRODUCTION_REKOR_LOG_ID;
  }

  /** `<data-dir>/signatures/last_log_index`. */
  get lastLogIndexPath(): string {
    return join(this.#dir, "last_log_index");
  }

  /** `<data-dir>/signatures/log_state.json`. */
  get statePath(): string {
    return join(this.#dir, "log_state.json");
  }

  /** Reads the state; a corrupt file is `STORE_INVALID` (never silently reset). */
  async read(): Promise<LogState> {
    if (!await ownDirectoryExists(this.#dataDir, ["signatures"])) {
      return { logs: new Map(), legacyLastLogIndex: null };
    }
    const legacyText = await readOptional(this.lastLogIndexPath, MAX_LAST_LOG_INDEX_BYTES);
    let legacyLastLogIndex: number | null = null;
    if (legacyText !== null) {
      const t = legacyText.trim();
      if (!/^[0-9]{1,16}$/.test(t) || !Number.isSafeInteger(Number(t))) {
        throw corrupt(this.lastLogIndexPath, "is not a decimal log index");
      }
      legacyLastLogIndex = Number(t);
    }
    const stateText = await readOptional(this.statePath, MAX_STATE_BYTES);
    const logs = new Map<string, LogStateEntry>();
    if (stateText !== null) parseState(stateText, this.statePath, logs);
    return { logs, legacyLastLogIndex };
  }

  /**
   * Checks the verified signatures of a candidate image against the state; throws `ROLLBACK`.
   * `installedTime` is the installed image's signing time when the state has none.
   */
  async check(
    verified: readonly VerifiedImageSignature[],
    options: Pick<CheckRollbackOptions, "installedTime"> = {},
  ): Promise<RollbackVerdict> {
    return checkRollback(await this.read(), verified, { ...options, legacyLogId: this.#legacyLogId });
  }

  /**
   * Records the candidate's verified log positions (never lowering a log's index) and updates
   * `last_log_index`. Call under the store lock, after installing.
   */
  async record(verified: readonly VerifiedImageSignature[]): Promise<void> {
    const positions = verifiedLogPositions(verified);
    const first = verified[0];
    if (first === undefined) throw new DangerzoneError("INTERNAL", "nothing verified to record");
    const state = await this.read();
    const logs = new Map(state.logs);
    const now = new Date().toISOString();
    await ensureOwnDirectory(this.#dataDir, ["signatures"]);
    for (const p of positions) {
      const cur = logs.get(p.logId);
      if (cur === undefined || p.logIndex >= cur.logIndex) {
        logs.set(p.logId, {
          logIndex: p.logIndex,
          integratedTime: p.integratedTime,
          digest: first.digest,
          updatedAt: now,
        });
      }
    }
    const doc = {
      version: 1,
      logs: Object.fromEntries([...logs.entries()].sort(([a], [b]) => a < b ? -1 : 1)),
    };
    await writeFileAtomic(this.statePath, new TextEncoder().encode(JSON.stringify(doc, null, 2) + "\n"));
    // `last_log_index` follows the legacy log; when the only log is another one, only a legacy cosign
    // signature's log may stand in for it (a bundle's Rekor v2 shard index is another index space).
    const legacyPositions = verifiedLogPositions(verified.filter((v) => !isVerifiedBundleSignature(v)));
    const legacy = positions.find((p) => p.logId === this.#legacyLogId) ??
      (positions.length === 1 && legacyPositions.length === 1 ? legacyPositions[0] : undefined);
    if (legacy !== undefined) {
      const index = Math.max(legacy.logIndex, state.legacyLastLogIndex ?? 0);
      await writeFileAtomic(this.lastLogIndexPath, new TextEncoder().encode(String(index)));
    }
  }
}

/**
 * The rollback rule, pure. Per log, the candidate's highest verified index is compared with the
 * recorded one: higher = newer, equal = up to date, lower = refused. A log without state is newer
 * only if its signed integration time is later than every recorded one, and every recorded one must be
 * known: a state from Dangerzone (`last_log_index` alone, no time) needs `options.installedTime`, else
 * such a candidate is refused. Any newer log makes the image newer; otherwise any equal one makes it up
 * to date; otherwise `ROLLBACK`.
 */
export function checkRollback(
  state: LogState,
  verified: readonly VerifiedImageSignature[],
  options: CheckRollbackOptions = {},
): RollbackVerdict {
  const positions: LogPosition[] = verifiedLogPositions(verified);
  if (positions.length === 0) {
    throw new DangerzoneError("INTERNAL", "rollback check without verified signatures");
  }
  const floor = floorOf(state, options.legacyLogId ?? PRODUCTION_REKOR_LOG_ID);
  const latest = latestInstalledTime(floor, options.installedTime);
  let equal = false;
  const older: string[] = [];
  for (const p of positions) {
    const f = floor.get(p.logId);
    const log = `log ${p.logId.slice(0, 12)}…`;
    if (f === undefined) {
      if (floor.size === 0) return "newer";
      if ("unknown" in latest) {
        older.push(
          `${log} is not the installed image's log, and when the installed image was signed is unknown ` +
            `(${latest.unknown.slice(0, 300)})`,
        );
      } else if (p.integratedTime > latest.integratedTime) {
        return "newer";
      } else {
        older.push(`${log} is new but its entry (time ${p.integratedTime}) predates the installed one`);
      }
    } else if (p.logIndex > f.logIndex) {
      return "newer";
    } else if (p.logIndex === f.logIndex) {
      equal = true;
    } else {
      older.push(`log index ${p.logIndex} is lower than the installed ${f.logIndex} (${log})`);
    }
  }
  if (equal) return "up-to-date";
  throw new DangerzoneError("ROLLBACK", `rollback refused: ${older.join("; ")}`, {
    hint: "an older image than the installed one was offered; load-archive --force bypasses this check",
  });
}

/**
 * True when {@linkcode checkRollback} needs the installed image's signing time: the state records a
 * log without a time (Dangerzone's `last_log_index`) and the candidate has entries in a log the state
 * does not know. Callers derive the time only then (it asks the container runtime).
 */
export function needsInstalledTime(
  state: LogState,
  verified: readonly VerifiedImageSignature[],
  options: LogStateOptions = {},
): boolean {
  const floor = floorOf(state, options.legacyLogId ?? PRODUCTION_REKOR_LOG_ID);
  const timeless = [...floor.values()].some((f) => f.integratedTime === null);
  return timeless && verifiedLogPositions(verified).some((p) => !floor.has(p.logId));
}

type Floor = Map<string, { logIndex: number; integratedTime: number | null }>;

/** The recorded index (and time, when known) per log; `last_log_index` is the legacy log's. */
function floorOf(state: LogState, legacyLogId: string): Floor {
  const floor: Floor = new Map();
  for (const [id, e] of state.logs) floor.set(id, { logIndex: e.logIndex, integratedTime: e.integratedTime });
  if (state.legacyLastLogIndex !== null) {
    const cur = floor.get(legacyLogId);
    if (cur === undefined) {
      floor.set(legacyLogId, { logIndex: state.legacyLastLogIndex, integratedTime: null });
    } else if (state.legacyLastLogIndex > cur.logIndex) {
      // Dangerzone installed a later image in this log than our state says: its time is unknown.
      floor.set(legacyLogId, { logIndex: state.legacyLastLogIndex, integratedTime: null });
    }
  }
  return floor;
}

/** The latest signing time of what is installed, or why it is unknown. */
function latestInstalledTime(floor: Floor, installed: InstalledTime | undefined): InstalledTime {
  const times = [...floor.values()].map((f) => f.integratedTime);
  const known = times.flatMap((t) => t === null ? [] : [t]);
  if (known.length === times.length) return { integratedTime: Math.max(0, ...known) };
  if (installed === undefined) {
    return { unknown: "the state records a log index without a time and none was derived" };
  }
  if ("unknown" in installed) return installed;
  return { integratedTime: Math.max(installed.integratedTime, ...known) };
}

function parseState(text: string, path: string, into: Map<string, LogStateEntry>): void {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (cause) {
    throw corrupt(path, "is not JSON", cause);
  }
  const logs = typeof v === "object" && v !== null && Reflect.get(v, "version") === 1
    ? Reflect.get(v, "logs")
    : undefined;
  if (typeof logs !== "object" || logs === null || Array.isArray(logs)) {
    throw corrupt(path, "has no version-1 logs map");
  }
  for (const [id, e] of Object.entries(logs)) {
    if (!/^[0-9a-f]{64}$/.test(id) || typeof e !== "object" || e === null) {
      throw corrupt(path, `has a bad log ${id.slice(0, 20)}`);
    }
    const logIndex: unknown = Reflect.get(e, "logIndex");
    const integratedTime: unknown = Reflect.get(e, "integratedTime");
    const digest: unknown = Reflect.get(e, "digest");
    const updatedAt: unknown = Reflect.get(e, "updatedAt");
    if (
      typeof logIndex !== "number" || !Number.isSafeInteger(logIndex) || logIndex < 0 ||
      typeof integratedTime !== "number" || !Number.isSafeInteger(integratedTime) ||
      typeof digest !== "string" || typeof updatedAt !== "string"
    ) {
      throw corrupt(path, `has a malformed entry for log ${id.slice(0, 12)}`);
    }
    into.set(id, { logIndex, integratedTime, digest, updatedAt });
  }
}

/** Dangerzone writes a decimal index; anything this long is not one. */
const MAX_LAST_LOG_INDEX_BYTES = 1024;
/** Our state: one small entry per trusted log. */
const MAX_STATE_BYTES = 1024 * 1024;

/** A state file's text (a regular file, never followed, bounded), or null when absent. */
async function readOptional(path: string, limit: number): Promise<string | null> {
  const bytes = await readOwnFileBounded(path, { limit, tooLargeCode: "STORE_INVALID", what: "state file" });
  if (bytes === null) return null;
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (cause) {
    throw corrupt(path, "is not UTF-8 text", cause);
  }
}

function corrupt(path: string, detail: string, cause?: unknown): DangerzoneError {
  return new DangerzoneError("STORE_INVALID", `${path} ${detail}`, {
    ...(cause === undefined ? {} : { cause }),
    hint: "the anti-rollback state is damaged; restore it or remove it knowingly",
  });
}
