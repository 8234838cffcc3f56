/**
 * The Rekor public key(s) of a trusted root as PEM: what the seed's recipe
 * `jq -r '.tlogs[0].publicKey.rawBytes' trusted_root.json | base64 -d | openssl pkey -pubin -inform DER`
 * prints, byte for byte (a SubjectPublicKeyInfo in 64-column base64 between the PUBLIC KEY lines).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { DangerzoneError } from "../errors.ts";
import type { SigstoreTrustedRoot, TransparencyLogKey } from "../sigstore/crypto/trusted_root.ts";

/** Which transparency logs to export. */
export type RekorKeySelection = { kind: "first" } | { kind: "log-id"; logId: string } | { kind: "all" };

/** One exported key. */
export interface ExportedRekorKey {
  /** The log's base URL. */
  baseUrl: string;
  /** The log ID (hex), as the trusted root declares it. */
  logId: string;
  /** The PEM text, ending with a newline. */
  pem: string;
}

/**
 * The PEM keys of the selected transparency logs (`first` is `.tlogs[0]`, the recipe's choice).
 *
 * @example
 * ```ts
 * import { productionTrustedRoot } from "../sigstore/crypto/trusted_root.ts";
 * import { rekorKeyPems } from "./rekor_key_pem.ts";
 * const [first] = rekorKeyPems(productionTrustedRoot(), { kind: "first" });
 * ```
 */
export function rekorKeyPems(root: SigstoreTrustedRoot, selection: RekorKeySelection): ExportedRekorKey[] {
  let logs: readonly TransparencyLogKey[];
  switch (selection.kind) {
    case "first":
      logs = root.rekorLogs.slice(0, 1);
      break;
    case "all":
      logs = root.rekorLogs;
      break;
    case "log-id": {
      const wanted = selection.logId.toLowerCase();
      logs = root.rekorLogs.filter((l) => l.logIdHex === wanted);
      if (logs.length === 0) {
        throw new DangerzoneError(
          "USAGE",
          `no transparency log with ID ${selection.logId} in ${root.source}`,
          {
            hint: `known log IDs: ${root.rekorLogs.map((l) => l.logIdHex).join(", ")}`,
          },
        );
      }
      break;
    }
  }
  return logs.map((log) => {
    if (log.keyDetails === "PKCS1_RSA_PKCS1V5") {
      throw new DangerzoneError(
        "UNSUPPORTED",
        `the key of ${log.baseUrl} is PKCS#1, not a SubjectPublicKeyInfo`,
      );
    }
    return { baseUrl: log.baseUrl, logId: log.logIdHex, pem: spkiPem(log.publicKeyDer) };
  });
}

/** DER SubjectPublicKeyInfo to PEM, as OpenSSL writes it. */
export function spkiPem(der: Uint8Array): string {
  const lines = Buffer.from(der).toString("base64").match(/.{1,64}/g) ?? [];
  return `-----BEGIN PUBLIC KEY-----\n${lines.join("\n")}\n-----END PUBLIC KEY-----\n`;
}
