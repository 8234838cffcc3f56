/**
 * Private: the only names an OCI image layout archive may hold, and how untrusted entry names
 * are checked against them. Every refusal is `ARCHIVE_INVALID` naming the entry.
 *
 * @module
 */
import { DangerzoneError } from "../errors.ts";
import { type Digest, digestFromHex, digestHex } from "../oci/digest.ts";

/** The metadata files of a layout (small JSON files, read into memory). */
export type MetadataName = "oci-layout" | "index.json" | "dangerzone.json";

/** What an archive entry name stands for, once checked. */
export type LayoutEntry =
  | { kind: "directory"; name: "" | "blobs" | "blobs/sha256" }
  | { kind: "metadata"; name: MetadataName }
  | { kind: "blob"; name: string; digest: Digest };

const BLOB_RE = /^blobs\/sha256\/([0-9a-f]{64})$/;
// deno-lint-ignore no-control-regex
const UNSAFE_CHARS_RE = /[\x00-\x1f\x7f\\]/;

/** A display form of an untrusted name: control characters escaped, at most 120 characters. */
export function displayName(untrusted: string): string {
  const escaped = JSON.stringify(untrusted.length > 120 ? `${untrusted.slice(0, 120)}…` : untrusted);
  return escaped.slice(1, -1);
}

function refuse(untrusted: string, why: string): never {
  throw new DangerzoneError("ARCHIVE_INVALID", `archive entry '${displayName(untrusted)}' ${why}`, {
    hint: "this is not an archive made by prepare-archive or cosign save; do not use it",
  });
}

/**
 * Checks an untrusted entry name (after any pax override) and says which layout file it is.
 * Accepts `./`-prefixed and bare names; refuses absolute paths, `..`, control characters,
 * backslashes and anything outside `oci-layout`, `index.json`, `dangerzone.json`,
 * `blobs/sha256/<64 hex>` and the directories `./`, `./blobs/`, `./blobs/sha256/`.
 */
export function classifyArchivePath(untrustedName: string, isDirectory: boolean): LayoutEntry {
  if (untrustedName.length === 0) refuse(untrustedName, "has an empty name");
  if (UNSAFE_CHARS_RE.test(untrustedName)) {
    refuse(untrustedName, "has control characters or a backslash in its name");
  }
  if (untrustedName.startsWith("/")) refuse(untrustedName, "has an absolute path");
  if (untrustedName.split("/").includes("..")) refuse(untrustedName, "has a '..' path component");
  let name = untrustedName;
  if (name === ".") name = "";
  else if (name.startsWith("./")) name = name.slice(2);
  if (isDirectory) {
    if (name.endsWith("/")) name = name.slice(0, -1);
    if (name === "" || name === "blobs" || name === "blobs/sha256") return { kind: "directory", name };
    return refuse(untrustedName, "is a directory outside the OCI image layout");
  }
  if (name.endsWith("/") || name === "") refuse(untrustedName, "is a regular file with a directory name");
  if (name === "oci-layout" || name === "index.json" || name === "dangerzone.json") {
    return { kind: "metadata", name };
  }
  const match = BLOB_RE.exec(name);
  if (match?.[1] !== undefined) return { kind: "blob", name, digest: digestFromHex(match[1]) };
  return refuse(
    untrustedName,
    "is outside the OCI image layout (allowed: oci-layout, index.json, dangerzone.json, blobs/sha256/<64 hex>)",
  );
}

/** The layout-relative path of a blob: `blobs/sha256/<hex>` (safe: a Digest is always 64 hex). */
export function blobRelativePath(digest: Digest): string {
  return `blobs/sha256/${digestHex(digest)}`;
}
