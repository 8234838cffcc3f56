// deno-lint-ignore-file no-console -- console output is allowed only in main.ts and src/cli/
/**
 * `verify-signatures --signatures FILE --digest sha256:HEX [--pubkey FILE] [--reference REPO]`:
 * verifies a stored signature list (cosign download signature form) offline, like
 * `cosign verify-blob`. Exit 0 when at least one signature verifies, 10 otherwise.
 *
 * @module
 */
import { DangerzoneError, ExitCode, type ExitCodeValue } from "../errors.ts";
import { parseDigest } from "../oci/digest.ts";
import { MAX_SIGNATURE_LIST_BYTES, parseSignatureList } from "../sigstore/cosign/cosign_signature.ts";
import { loadPublicKeyFile, pinnedPublisherKey, type PublicKey } from "../sigstore/crypto/keys.ts";
import { requireVerified, type SignatureResult, verifyCosignSignatures } from "../sigstore/cosign/policy.ts";
import { readFileBounded } from "../read_bounded.ts";
import { trustFrom } from "./_context.ts";
import type { CommonOptions } from "./common.ts";
import { errorLine, type Output } from "./output.ts";

/** Options of `verify-signatures` as commander parses them. */
export interface VerifySignaturesOptions extends CommonOptions {
  signatures?: string;
  digest?: string;
  reference?: string;
}

/**
 * The `verify-signatures` action.
 *
 * @example
 * ```ts ignore
 * const code = await verifySignaturesCommand([], { signatures: "s.json", digest: "sha256:..." }, out);
 * ```
 */
export async function verifySignaturesCommand(
  _args: string[],
  options: VerifySignaturesOptions & Record<string, unknown>,
  out: Output,
): Promise<ExitCodeValue> {
  if (options.signatures === undefined || options.digest === undefined) {
    throw new DangerzoneError("USAGE", "verify-signatures needs --signatures FILE and --digest sha256:HEX");
  }
  const digest = parseDigest(options.digest);
  const reference = options.reference ?? options.identity;
  const publicKey: PublicKey = options.pubkey === undefined
    ? await pinnedPublisherKey()
    : await loadPublicKeyFile(options.pubkey);
  const rekorKeys = (await trustFrom(options)).rekorKeys;
  const untrustedList = await readFileBounded(options.signatures, {
    limit: MAX_SIGNATURE_LIST_BYTES,
    tooLargeCode: "SIGNATURE_INVALID",
    what: "signature file",
  });
  const entries = parseSignatureList(untrustedList);
  out.debugLine(
    `${entries.length} signature(s), ${rekorKeys.size} trusted Rekor log(s): ${
      rekorKeys.logIds().join(", ")
    }`,
  );
  const verdict = await verifyCosignSignatures(entries, { publicKey, rekorKeys }, { digest, reference });

  const key = {
    fileSha256: publicKey.fileSha256,
    spkiSha256: publicKey.spkiSha256,
    algorithm: publicKey.algorithm,
  };
  const signatures = verdict.results.map((r) => describe(r, key));
  let failure: DangerzoneError | undefined;
  try {
    requireVerified(verdict);
  } catch (err) {
    if (!(err instanceof DangerzoneError)) throw err;
    failure = err;
  }
  if (failure !== undefined) {
    if (!out.json) throw failure;
    console.error(errorLine(failure));
    out.result({
      ok: false,
      digest,
      key,
      error: { code: failure.code, message: failure.message, hint: failure.hint ?? null },
      signatures,
    });
    return ExitCode.VERIFICATION;
  }
  out.result({ ok: true, digest, key, verified: verdict.verified.length, total: entries.length, signatures });
  out.line(
    `verified: ${verdict.verified.length} of ${entries.length} signature(s) of ${digest} verify with key sha256:${
      publicKey.fileSha256 ?? publicKey.spkiSha256
    }`,
  );
  for (const r of verdict.results) {
    if ("verified" in r) {
      const v = r.verified;
      out.line(
        `  signature ${r.index + 1}: verified; Rekor log ${
          v.logId.slice(0, 16)
        }… index ${v.logIndex}, integrated ${
          new Date(v.integratedTime * 1000).toISOString()
        }, docker-reference ${v.dockerReference}${v.referenceEnforced ? "" : " (reported, not enforced)"}`,
      );
    } else {
      out.line(`  signature ${r.index + 1}: rejected (${r.error.code}): ${r.error.message}`);
    }
  }
  return ExitCode.OK;
}

function describe(r: SignatureResult, key: Record<string, unknown>): Record<string, unknown> {
  if ("verified" in r) {
    const v = r.verified;
    return {
      index: r.index,
      verdict: "verified",
      key,
      logId: v.logId,
      logIndex: v.logIndex,
      integratedTime: v.integratedTime,
      dockerReference: v.dockerReference,
      referenceEnforced: v.referenceEnforced,
      error: null,
    };
  }
  // Nothing of a rejected signature is shown: its fields are unverified.
  return {
    index: r.index,
    verdict: "rejected",
    key,
    logId: null,
    logIndex: null,
    integratedTime: null,
    dockerReference: null,
    referenceEnforced: null,
    error: { code: r.error.code, message: r.error.message },
  };
}
