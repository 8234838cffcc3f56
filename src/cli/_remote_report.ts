/**
 * The human and JSON description of a verified remote image, shared by `check` and `store-signatures`.
 * Private to `src/cli/`.
 *
 * @module
 */
import type { RemoteVerification } from "../update/verify_remote.ts";
import type { Output } from "./output.ts";

/** The JSON form of a remote verification (verified fields only; rejected signatures show only why). */
export function remoteJson(remote: RemoteVerification, now: Date): Record<string, unknown> {
  return {
    reference: remote.reference.format(),
    digest: remote.digest,
    mediaType: remote.manifest.descriptor.mediaType,
    platformDigests: remote.platformDigests,
    expectedReference: remote.expectedReference,
    freshness: remote.freshness,
    logs: remote.positions.map((p) => ({
      logId: p.logId,
      logIndex: p.logIndex,
      integratedTime: p.integratedTime,
    })),
    logIndex: Math.max(...remote.positions.map((p) => p.logIndex)),
    integratedTime: remote.newestIntegratedTime,
    signatureAgeSeconds: Math.max(0, Math.floor(now.getTime() / 1000) - remote.newestIntegratedTime),
    verified: remote.verified.length,
    total: remote.reports.length,
    signatures: remote.reports,
  };
}

/** Prints one line per signature verdict (debug-level detail for rejected ones is in the JSON). */
export function printReports(remote: RemoteVerification, out: Output): void {
  for (const r of remote.reports) {
    if (r.verdict === "verified") {
      out.line(
        `  signature ${r.index + 1} (${r.kind}, ${r.source}): verified; log ${
          (r.logId ?? "").slice(0, 12)
        }… index ${r.logIndex ?? "?"}${
          r.dockerReference === null ? "" : `, docker-reference ${r.dockerReference}`
        }`,
      );
    } else {
      out.line(
        `  signature ${r.index + 1} (${r.kind}, ${r.source}): rejected (${r.error?.code ?? "?"}): ${
          r.error?.message ?? ""
        }`,
      );
    }
  }
}

/** "N days" / "N hours" for a signature age. */
export function describeAge(seconds: number): string {
  if (seconds >= 2 * 86400) return `${Math.floor(seconds / 86400)} days`;
  if (seconds >= 7200) return `${Math.floor(seconds / 3600)} hours`;
  return `${Math.floor(seconds / 60)} minutes`;
}
