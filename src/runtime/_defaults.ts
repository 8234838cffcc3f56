/**
 * Default time limits of runtime calls. Private to `src/runtime/`.
 *
 * @module
 */

/** Default limit of every call except `load()`. */
export const DEFAULT_TIMEOUT_MS = 120_000;

/** Default limit of `load()` (a large image into vfs storage is slow). */
export const DEFAULT_LOAD_TIMEOUT_MS = 3_600_000;

/** What a version string may look like (`4.3.1`, `28.2.2`, `5.0.0-dev`). */
export const VERSION_RE = /^[0-9A-Za-z.+~_-]{1,64}$/;
