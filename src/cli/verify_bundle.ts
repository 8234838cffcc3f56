/**
 * `verify-bundle`: verify a Sigstore bundle per the sigstore-conformance client protocol:
 * `verify-bundle --bundle FILE (--key FILE | --certificate-identity ID --certificate-oidc-issuer URL)
 * [--trusted-root FILE] FILE_OR_sha256:DIGEST`. Exit 0 verified, 10 not.
 *
 * @module
 */
import { DangerzoneError } from "../errors.ts";
import { isDigest } from "../oci/digest.ts";
import { type BundleArtifact, type BundlePolicy, verifyBundle } from "../sigstore/crypto/bundle_verifier.ts";
import { readFileBounded } from "../read_bounded.ts";
import { trustedRootFrom } from "./_context.ts";
import type { CommonOptions } from "./common.ts";
import type { Output } from "./output.ts";

/** The options of `verify-bundle`, as commander parses them. */
export interface VerifyBundleCliOptions extends CommonOptions {
  bundle?: unknown;
  key?: unknown;
  certificateIdentity?: unknown;
  certificateOidcIssuer?: unknown;
}

/**
 * Runs `verify-bundle`; returns exit code 0 when the bundle verifies, throws a `DangerzoneError`
 * otherwise.
 *
 * @example
 * ```ts
 * import { runVerifyBundle } from "./verify_bundle.ts";
 * import { Output } from "./output.ts";
 * await runVerifyBundle(["a.txt"], { bundle: "a.txt.sigstore.json", key: "cosign.pub" }, new Output({}));
 * ```
 */
export async function runVerifyBundle(
  args: string[],
  options: VerifyBundleCliOptions & Record<string, unknown>,
  out: Output,
): Promise<0> {
  const target = args[0];
  const bundlePath = options.bundle;
  if (target === undefined || typeof bundlePath !== "string") {
    throw usage("verify-bundle needs --bundle FILE and the artifact (FILE or sha256:DIGEST)");
  }
  const policy = await readPolicy(options);
  const trustedRoot = await trustedRootFrom(options);
  const artifact: BundleArtifact = isDigest(target)
    ? { digest: target }
    : await readFile(target, "artifact", MAX_ARTIFACT_BYTES);
  const untrustedBundle = await readFile(bundlePath, "bundle");

  const verified = verifyBundle(untrustedBundle, { artifact, policy, trustedRoot });

  const signer = verified.signer.kind === "certificate"
    ? `${verified.signer.identity} (issuer ${verified.signer.issuer})`
    : `key sha256:${verified.signer.publicKeySha256}`;
  const logs = verified.tlogEntries.map((e) => `${e.logId.slice(0, 16)}#${e.logIndex}`).join(", ");
  out.line(`verified: ${bundlePath} covers ${verified.artifactDigest}, signed by ${signer}; tlog ${logs}`);
  out.result({
    ok: true,
    bundle: bundlePath,
    mediaType: verified.mediaType,
    content: verified.content,
    artifactDigest: verified.artifactDigest,
    signer: verified.signer,
    tlogEntries: verified.tlogEntries.map((e) => ({ ...e, integratedTime: e.integratedTime ?? null })),
    trustedRoot: trustedRoot.source,
    predicateType: verified.statement?.predicateType ?? null,
  });
  return 0;
}

async function readPolicy(options: VerifyBundleCliOptions): Promise<BundlePolicy> {
  const { key, certificateIdentity: identity, certificateOidcIssuer: issuer } = options;
  if (key !== undefined) {
    if (identity !== undefined || issuer !== undefined) {
      throw usage("--key replaces --certificate-identity/--certificate-oidc-issuer; give one or the other");
    }
    if (typeof key !== "string") throw usage("--key needs a file");
    return { kind: "key", publicKeyPem: new TextDecoder().decode(await readFile(key, "key")) };
  }
  if (typeof identity !== "string" || typeof issuer !== "string" || identity === "" || issuer === "") {
    throw usage("give --key FILE, or both --certificate-identity and --certificate-oidc-issuer");
  }
  return { kind: "identity", identity, issuer };
}

/** Largest artifact read into memory. */
const MAX_ARTIFACT_BYTES = 1024 * 1024 * 1024;

/** Largest bundle or key file. */
const MAX_BUNDLE_BYTES = 16 * 1024 * 1024;

function readFile(path: string, what: string, limit = MAX_BUNDLE_BYTES): Promise<Uint8Array> {
  return readFileBounded(path, { limit, tooLargeCode: "BUNDLE_INVALID", what: `${what} file` });
}

function usage(message: string): DangerzoneError {
  return new DangerzoneError("USAGE", message, { hint: "run verify-bundle --help" });
}
