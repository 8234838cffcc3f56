/**
 * File-system paths without `node:path`: {@linkcode join}, {@linkcode dirname} and {@linkcode basename}
 * give exactly what `node:path` gives on the host platform (POSIX rules on Linux and macOS, win32 rules
 * on Windows). The first `node:` import of a process starts Deno's Node compatibility layer (about 10 ms,
 * measured), and `verify-local` runs before every document conversion, so src/ takes its paths from here.
 * {@linkcode posix} and {@linkcode win32} are both flavours, whatever the host, so tests check each.
 *
 * The algorithms are ported from Node.js `lib/path.js` (normalizeString, normalize, join, dirname,
 * basename) as Deno 2.9's `node:path` ships them, with the win32 rules for reserved device names
 * (`CON:`, `COM1:` …) and for relative paths that would normalise into a drive (CVE-2024-36139).
 * Left out: Node's shortcuts that change no result, and the branches of win32 normalize for a reserved
 * device name before a colon, which `join` never reaches (it does not normalise such a path).
 * Node.js is MIT-licensed: Copyright Joyent, Inc. and other Node contributors.
 *
 * @example
 * ```ts
 * import { basename, dirname, join, win32 } from "./fs_path.ts";
 * join("/data", "tuf", "../signatures"); // "/data/signatures" on Linux
 * dirname("/data/tuf/root.json"); // "/data/tuf"
 * basename("/data/tuf/"); // "tuf"
 * win32.join("C:\\data", "tuf/root.json"); // "C:\\data\\tuf\\root.json"
 * ```
 *
 * @module
 */

const CHAR_DOT = 46;
const CHAR_SLASH = 47;
const CHAR_COLON = 58;
const CHAR_BACKSLASH = 92;

/** What Windows resolves as a device wherever it appears with a colon (Node's list, upper case). */
const WINDOWS_RESERVED_NAMES: ReadonlySet<string> = new Set([
  "CON",
  "PRN",
  "AUX",
  "NUL",
  "COM1",
  "COM2",
  "COM3",
  "COM4",
  "COM5",
  "COM6",
  "COM7",
  "COM8",
  "COM9",
  "LPT1",
  "LPT2",
  "LPT3",
  "LPT4",
  "LPT5",
  "LPT6",
  "LPT7",
  "LPT8",
  "LPT9",
  "COM\u00b9",
  "COM\u00b2",
  "COM\u00b3",
  "LPT\u00b9",
  "LPT\u00b2",
  "LPT\u00b3",
]);

/** The three path functions of one platform: the part of `node:path`'s `posix` / `win32` src/ uses. */
export interface PathFlavour {
  /** Joins the non-empty `parts` with the separator and normalises the result (`.` for nothing). */
  join(...parts: string[]): string;
  /** The path without its last component (trailing separators ignored; `.` when there is none). */
  dirname(path: string): string;
  /** The last component of the path (trailing separators ignored). */
  basename(path: string): string;
}

function isPosixSeparator(code: number): boolean {
  return code === CHAR_SLASH;
}

function isWin32Separator(code: number): boolean {
  return code === CHAR_SLASH || code === CHAR_BACKSLASH;
}

function isDriveLetter(code: number): boolean {
  return (code >= 65 && code <= 90) || (code >= 97 && code <= 122);
}

/** Whether `path` before `colonIndex` is a reserved device name (Node's test, quirks included). */
function isWindowsReservedName(path: string, colonIndex: number): boolean {
  return WINDOWS_RESERVED_NAMES.has(path.slice(0, colonIndex).toUpperCase());
}

/**
 * Resolves `.` and `..` segments and drops empty ones, without any root (Node's normalizeString);
 * `allowAboveRoot` keeps leading `..` segments.
 */
function normalizeString(
  path: string,
  allowAboveRoot: boolean,
  separator: string,
  isSeparator: (code: number) => boolean,
): string {
  let res = "";
  let lastSegmentLength = 0;
  let lastSlash = -1;
  let dots = 0;
  let code = 0;
  for (let i = 0; i <= path.length; ++i) {
    if (i < path.length) code = path.charCodeAt(i);
    else if (isSeparator(code)) break;
    else code = CHAR_SLASH;

    if (!isSeparator(code)) {
      dots = code === CHAR_DOT && dots !== -1 ? dots + 1 : -1;
      continue;
    }
    if (lastSlash === i - 1 || dots === 1) {
      // An empty or `.` segment adds nothing.
    } else if (dots === 2) {
      const endsWithDotDot = res.length >= 2 && lastSegmentLength === 2 &&
        res.charCodeAt(res.length - 1) === CHAR_DOT && res.charCodeAt(res.length - 2) === CHAR_DOT;
      if (!endsWithDotDot && res.length > 0) {
        // `..` removes the last segment.
        const lastSlashIndex = res.length > 2 ? res.length - lastSegmentLength - 1 : -1;
        res = lastSlashIndex === -1 ? "" : res.slice(0, lastSlashIndex);
        lastSegmentLength = res.length === 0 ? 0 : res.length - 1 - res.lastIndexOf(separator);
        lastSlash = i;
        dots = 0;
        continue;
      }
      if (allowAboveRoot) {
        res += res.length > 0 ? `${separator}..` : "..";
        lastSegmentLength = 2;
      }
    } else {
      res += (res.length > 0 ? separator : "") + path.slice(lastSlash + 1, i);
      lastSegmentLength = i - lastSlash - 1;
    }
    lastSlash = i;
    dots = 0;
  }
  return res;
}

/** The non-empty parts, or undefined when there are none (both joins start here). */
function nonEmpty(parts: readonly string[]): [string, ...string[]] | undefined {
  const kept = parts.filter((p) => p.length > 0);
  const first = kept[0];
  return first === undefined ? undefined : [first, ...kept.slice(1)];
}

/**
 * The index of the separator that ends the directory part of `path`, looking at `path[offset..]` only:
 * trailing separators are skipped, then the last component; -1 when no separator precedes it.
 */
function directoryEnd(path: string, offset: number, isSeparator: (code: number) => boolean): number {
  let sawName = false;
  for (let i = path.length - 1; i >= offset; --i) {
    if (!isSeparator(path.charCodeAt(i))) sawName = true;
    else if (sawName) return i;
  }
  return -1;
}

/** The last component of `path[start..]`, trailing separators skipped (`""` when there is none). */
function lastComponent(path: string, start: number, isSeparator: (code: number) => boolean): string {
  let end = -1;
  for (let i = path.length - 1; i >= start; --i) {
    if (isSeparator(path.charCodeAt(i))) {
      if (end !== -1) return path.slice(i + 1, end);
    } else if (end === -1) {
      end = i + 1;
    }
  }
  return end === -1 ? "" : path.slice(start, end);
}

/** Normalises a non-empty path (what `join` builds) by POSIX rules. */
function posixNormalize(path: string): string {
  const isAbsolute = path.charCodeAt(0) === CHAR_SLASH;
  const trailingSeparator = path.charCodeAt(path.length - 1) === CHAR_SLASH;
  const tail = normalizeString(path, !isAbsolute, "/", isPosixSeparator);
  if (tail.length === 0) return isAbsolute ? "/" : trailingSeparator ? "./" : ".";
  const withTrailing = trailingSeparator ? `${tail}/` : tail;
  return isAbsolute ? `/${withTrailing}` : withTrailing;
}

function posixJoin(...parts: string[]): string {
  const kept = nonEmpty(parts);
  return kept === undefined ? "." : posixNormalize(kept.join("/"));
}

function posixDirname(path: string): string {
  if (path.length === 0) return ".";
  const hasRoot = path.charCodeAt(0) === CHAR_SLASH;
  const end = directoryEnd(path, 1, isPosixSeparator);
  if (end === -1) return hasRoot ? "/" : ".";
  if (hasRoot && end === 1) return "//";
  return path.slice(0, end);
}

function posixBasename(path: string): string {
  return lastComponent(path, 0, isPosixSeparator);
}

/** A UNC root `\\server\share` at the start of a path: where the share name starts and ends. */
interface UncRoot {
  readonly server: string;
  readonly shareStart: number;
  readonly shareEnd: number;
}

/** Matches two separators, a server name, separators and a share name; else undefined. */
function matchUncRoot(path: string): UncRoot | undefined {
  const len = path.length;
  if (len < 2 || !isWin32Separator(path.charCodeAt(0)) || !isWin32Separator(path.charCodeAt(1))) {
    return undefined;
  }
  let j = 2;
  while (j < len && !isWin32Separator(path.charCodeAt(j))) j++;
  if (j === len || j === 2) return undefined;
  const server = path.slice(2, j);
  while (j < len && isWin32Separator(path.charCodeAt(j))) j++;
  if (j === len) return undefined;
  const shareStart = j;
  while (j < len && !isWin32Separator(path.charCodeAt(j))) j++;
  return { server, shareStart, shareEnd: j };
}

/** The device (`C:`, `\\server\share`, `\\.`), where the rest starts, and whether the path is absolute. */
interface Win32Root {
  readonly device: string | undefined;
  readonly rootEnd: number;
  readonly isAbsolute: boolean;
}

/** The root of a path of two or more characters, for win32 normalize. */
function win32NormalizeRoot(path: string): Win32Root {
  const code = path.charCodeAt(0);
  if (!isWin32Separator(code)) {
    const colonIndex = path.indexOf(":");
    if (colonIndex === 1 && isDriveLetter(code)) {
      const isAbsolute = path.length > 2 && isWin32Separator(path.charCodeAt(2));
      return { device: path.slice(0, 2), rootEnd: isAbsolute ? 3 : 2, isAbsolute };
    }
    return { device: undefined, rootEnd: 0, isAbsolute: false };
  }
  // Without a UNC root the leading separators are the root; normalizeString drops them.
  const unc = matchUncRoot(path);
  if (unc === undefined) return { device: undefined, rootEnd: 0, isAbsolute: true };
  if (unc.server === "." || unc.server === "?") {
    // A device namespace root (`\\.\PHYSICALDRIVE0`).
    return { device: `\\\\${unc.server}`, rootEnd: 4, isAbsolute: true };
  }
  const share = path.slice(unc.shareStart, unc.shareEnd);
  return { device: `\\\\${unc.server}\\${share}`, rootEnd: unc.shareEnd, isAbsolute: true };
}

/** Normalises a non-empty path (what `join` builds) by win32 rules. */
function win32Normalize(path: string): string {
  const len = path.length;
  if (len === 1) return isPosixSeparator(path.charCodeAt(0)) ? "\\" : path;
  const { device, rootEnd, isAbsolute } = win32NormalizeRoot(path);
  let tail = rootEnd < len ? normalizeString(path.slice(rootEnd), !isAbsolute, "\\", isWin32Separator) : "";
  if (tail.length === 0 && !isAbsolute) tail = ".";
  if (tail.length > 0 && isWin32Separator(path.charCodeAt(len - 1))) tail += "\\";
  if (!isAbsolute && device === undefined && path.includes(":")) {
    // A relative path must not normalise into one Windows reads as a drive (CVE-2024-36139).
    if (tail.length >= 2 && isDriveLetter(tail.charCodeAt(0)) && tail.charCodeAt(1) === CHAR_COLON) {
      return `.\\${tail}`;
    }
    for (let index = path.indexOf(":"); index !== -1; index = path.indexOf(":", index + 1)) {
      if (index === len - 1 || isWin32Separator(path.charCodeAt(index + 1))) return `.\\${tail}`;
    }
  }
  // Node's test as it is: with no colon it looks at the path without its last character (`CONx`).
  if (isWindowsReservedName(path, path.indexOf(":"))) return `.\\${device ?? ""}${tail}`;
  if (device === undefined) return isAbsolute ? `\\${tail}` : tail;
  return isAbsolute ? `${device}\\${tail}` : `${device}${tail}`;
}

function win32Join(...parts: string[]): string {
  const kept = nonEmpty(parts);
  if (kept === undefined) return ".";
  const first = kept[0];
  let joined = kept.join("\\");
  // Two leading separators would read as a UNC root; keep them only when the first part clearly is one
  // (exactly two separators, then a name).
  const sep = (i: number) => i < first.length && isWin32Separator(first.charCodeAt(i));
  if (!(sep(0) && sep(1) && first.length > 2 && !sep(2))) {
    let slashCount = 0;
    while (slashCount < joined.length && isWin32Separator(joined.charCodeAt(slashCount))) slashCount++;
    if (slashCount >= 2) joined = `\\${joined.slice(slashCount)}`;
  }
  // With a reserved device name in any component, `..` must not resolve through it: separators only.
  const hasReservedComponent = joined.split(/[\\/]/).some((segment) => {
    const colonIndex = segment.indexOf(":");
    return colonIndex !== -1 && isWindowsReservedName(segment, colonIndex);
  });
  return hasReservedComponent ? joined.replaceAll("/", "\\") : win32Normalize(joined);
}

function win32Dirname(path: string): string {
  const len = path.length;
  if (len === 0) return ".";
  const code = path.charCodeAt(0);
  if (len === 1) return isWin32Separator(code) ? path : ".";
  let rootEnd = -1;
  if (isWin32Separator(code)) {
    rootEnd = 1;
    const unc = matchUncRoot(path);
    // Past the separator after the share: the whole path when it ends with the share.
    if (unc !== undefined) rootEnd = unc.shareEnd + 1;
  } else if (isDriveLetter(code) && path.charCodeAt(1) === CHAR_COLON) {
    rootEnd = len > 2 && isWin32Separator(path.charCodeAt(2)) ? 3 : 2;
  }
  const end = directoryEnd(path, Math.max(rootEnd, 0), isWin32Separator);
  if (end !== -1) return path.slice(0, end);
  return rootEnd === -1 ? "." : path.slice(0, rootEnd);
}

function win32Basename(path: string): string {
  const hasDrive = path.length >= 2 && isDriveLetter(path.charCodeAt(0)) && path.charCodeAt(1) === CHAR_COLON;
  return lastComponent(path, hasDrive ? 2 : 0, isWin32Separator);
}

/** POSIX paths (`node:path`'s `posix`): `/` separates, a leading `/` is the root. */
export const posix: PathFlavour = { join: posixJoin, dirname: posixDirname, basename: posixBasename };

/** Windows paths (`node:path`'s `win32`): `\` and `/` separate; drives, UNC and device roots. */
export const win32: PathFlavour = { join: win32Join, dirname: win32Dirname, basename: win32Basename };

const HOST: PathFlavour = Deno.build.os === "windows" ? win32 : posix;

/** Joins the non-empty `parts` with the host's separator and normalises the result (`node:path` `join`). */
export function join(...parts: string[]): string {
  return HOST.join(...parts);
}

/** The directory part of `path` on the host platform (`node:path` `dirname`). */
export function dirname(path: string): string {
  return HOST.dirname(path);
}

/** The last component of `path` on the host platform (`node:path` `basename`, without a suffix). */
export function basename(path: string): string {
  return HOST.basename(path);
}
