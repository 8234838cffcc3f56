/**
 * Reads what `podman load` and `docker load` print. Private to `src/runtime/`.
 *
 * @module
 */
import { isDigest } from "../oci/digest.ts";
import { unexpected } from "./_json.ts";
import type { LoadResult } from "./runtime.ts";

/**
 * Parses the `Loaded image…` lines:
 * - `Loaded image: NAME` (podman, docker), or `Loaded image: sha256:<hex>` for an untagged image (podman);
 * - `Loaded image ID: sha256:<hex>` (docker);
 * - `Loaded image(s): A,B` (older podman).
 *
 * Other lines are ignored; no image at all is `RUNTIME_FAILED`.
 */
export function parseLoadOutput(stdout: string, what: string): LoadResult {
  const result: LoadResult = { names: [], ids: [] };
  for (const rawLine of stdout.split(/\r?\n/)) {
    const line = rawLine.trim();
    const m = /^Loaded image(?: ID|\(s\))?:\s*(.+)$/.exec(line);
    if (m === null || m[1] === undefined) continue;
    for (const item of m[1].split(",").map((s) => s.trim()).filter((s) => s !== "")) {
      const id = /^[0-9a-f]{64}$/.test(item) ? `sha256:${item}` : item;
      if (isDigest(id)) {
        if (!result.ids.includes(id)) result.ids.push(id);
      } else if (!result.names.includes(item)) {
        result.names.push(item);
      }
    }
  }
  if (result.names.length === 0 && result.ids.length === 0) {
    throw unexpected(what, "it reported no loaded image");
  }
  return result;
}
