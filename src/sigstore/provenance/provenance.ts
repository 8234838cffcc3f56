/**
 * SLSA build provenance of a container image, verified offline with an exact policy (issue 6).
 *
 * The pipeline for one attestation (a legacy cosign `.att` layer, or a Sigstore bundle such as
 * GitHub's build attestations), in order:
 *
 * 1. the signer: the certificate's SAN must be a trusted builder workflow
 *    (`slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml` by default,
 *    or one given with `builders`) at a full release tag `refs/tags/vX.Y.Z`; a branch is refused;
 * 2. the cryptography, by {@linkcode verifyBundle}: Fulcio chain at the log time, SCT, Rekor SET or
 *    inclusion proof and the entry bound to this envelope, the DSSE signature, the issuer
 *    `https://token.actions.githubusercontent.com` and that exact SAN;
 * 3. the certificate's Fulcio claims (now trusted) agree with each other and name the repository;
 * 4. the statement: exactly one subject, whose sha256 is the image digest; predicateType exactly SLSA
 *    v0.2 (v1 also for Sigstore bundles); the predicate's builder id equals the signer;
 * 5. the source, as slsa-verifier checks it: trigger and first material both
 *    `git+https://github.com/OWNER/REPO@REF`, equal to each other, OWNER/REPO equal to the expected one
 *    (GitHub compares owner and repository names case-insensitively; nothing else is); the
 *    certificate's repository, ref, commit and build config agree with the predicate;
 * 6. the optional `workflow`, `branch` and `tag`, exactly.
 *
 * Every failure is a {@linkcode DangerzoneError} naming the check; nothing is skipped.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { X509Certificate } from "@sigstore/core";
import type { Bundle } from "@sigstore/bundle";
import { DangerzoneError, isDangerzoneError } from "../../errors.ts";
import { type Digest, digestHex } from "../../oci/digest.ts";
import { readFulcioGithubClaims } from "./_fulcio_claims.ts";
import {
  type ProvenanceFacts,
  readProvenanceFacts,
  SLSA_PROVENANCE_V02,
  SLSA_PROVENANCE_V1,
} from "./_slsa_predicate.ts";
import { parseBundle } from "../formats/bundle.ts";
import { type VerifiedBundle, verifyBundle } from "../crypto/bundle_verifier.ts";
import { cosignAttestationToBundle, type UntrustedCosignAttestation } from "./cosign_attestation.ts";
import type { SigstoreTrustedRoot } from "../crypto/trusted_root.ts";

export { SLSA_PROVENANCE_V02, SLSA_PROVENANCE_V1 };

/** The OIDC issuer of GitHub Actions. */
export const GITHUB_ACTIONS_ISSUER = "https://token.actions.githubusercontent.com";

/** The builder trusted by default: slsa-github-generator's container workflow (SLSA Build Level 3). */
export const SLSA_CONTAINER_GENERATOR =
  "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml";

/** One untrusted attestation as discovered, with where it came from (for messages). */
export type UntrustedAttestation =
  | { readonly kind: "cosign"; readonly source: string; readonly layer: UntrustedCosignAttestation }
  | { readonly kind: "bundle"; readonly source: string; readonly bundle: Uint8Array };

/** What the provenance must say. */
export interface ProvenancePolicy {
  /** The source repository: `OWNER/REPO`, `github.com/OWNER/REPO`, `https://github.com/OWNER/REPO` or `git+https://…`. */
  readonly repository: string;
  /**
   * More trusted builders besides {@linkcode SLSA_CONTAINER_GENERATOR}: `https://github.com/OWNER/REPO/PATH`,
   * optionally pinned with `@refs/tags/vX.Y.Z` (or `@vX.Y.Z`). An entry for the default builder's
   * path replaces the default (to pin its version).
   */
  readonly builders?: readonly string[];
  /** The workflow file that must have run, e.g. `.github/workflows/release.yml`. */
  readonly workflow?: string;
  /** The source branch the build must come from. */
  readonly branch?: string;
  /** The source tag the build must come from. */
  readonly tag?: string;
}

/** Options of {@linkcode verifyProvenance}. */
export interface VerifyProvenanceOptions {
  /** The image digest (index or platform manifest) the provenance must be about. */
  readonly imageDigest: Digest;
  /** The policy. */
  readonly policy: ProvenancePolicy;
  /** The trust root (default: the production Sigstore root the project ships). */
  readonly trustedRoot?: SigstoreTrustedRoot;
}

const VERIFIED: unique symbol = Symbol("verified provenance");

/** Verified provenance claims; only {@linkcode verifyProvenance} creates one. */
export interface VerifiedProvenance {
  /** The image digest the provenance is about. */
  readonly imageDigest: Digest;
  /** The subject name in the statement (the image name at build time). */
  readonly subjectName: string;
  /** The predicate type. */
  readonly predicateType: string;
  /** The build type. */
  readonly buildType: string;
  /** The builder identity (certificate SAN = predicate builder id). */
  readonly builder: string;
  /** True when the builder is slsa-github-generator's container workflow (SLSA Build Level 3). */
  readonly slsaLevel3: boolean;
  /** The source repository `OWNER/REPO` as the provenance records it. */
  readonly repository: string;
  /** The source ref, e.g. `refs/tags/v1.0.0`. */
  readonly ref: string;
  /** The source commit, when recorded. */
  readonly commit: string | undefined;
  /** The workflow file that ran. */
  readonly workflow: string;
  /** The build trigger from the certificate, when recorded. */
  readonly trigger: string | undefined;
  /** Build start time as the provenance records it, if any. */
  readonly buildStartedOn: string | undefined;
  /** Build finish time as the provenance records it, if any. */
  readonly buildFinishedOn: string | undefined;
  /** The transparency-log entry: index, log ID (hex), integrated time (Unix seconds) and kind. */
  readonly logEntry: {
    readonly logIndex: string;
    readonly logId: string;
    readonly integratedTime: number | undefined;
    readonly kind: string;
  };
  /** Where the attestation was found. */
  readonly source: string;
  readonly [VERIFIED]: true;
}

/**
 * Verifies SLSA provenance attestations of an image; returns the claims of the first one that passes
 * every check, or throws the most telling failure when none does (none at all: `SIGNATURE_MISSING`).
 *
 * @example
 * ```ts
 * import { verifyProvenance } from "./provenance.ts";
 * import { parseDigest } from "../../oci/digest.ts";
 * declare const attestations: Parameters<typeof verifyProvenance>[0];
 * const claims = verifyProvenance(attestations, {
 *   imageDigest: parseDigest("sha256:" + "a".repeat(64)),
 *   policy: { repository: "freedomofpress/dangerzone" },
 * });
 * console.log(claims.workflow);
 * ```
 */
export function verifyProvenance(
  untrusted: readonly UntrustedAttestation[],
  options: VerifyProvenanceOptions,
): VerifiedProvenance {
  const expected = parseExpectedRepository(options.policy.repository);
  const builders = parseBuilders(options.policy.builders ?? []);
  if (untrusted.length === 0) {
    throw new DangerzoneError(
      "SIGNATURE_MISSING",
      `no provenance attestation found for ${options.imageDigest}`,
      {
        hint: "the image was not built with SLSA provenance, or its attestations were not copied",
      },
    );
  }
  const failures: DangerzoneError[] = [];
  for (const attestation of untrusted) {
    try {
      return verifyOne(attestation, options, expected, builders);
    } catch (err) {
      failures.push(asVerificationError(err, attestation.source));
    }
  }
  throw mostTelling(failures);
}

/** An expected repository `OWNER/REPO` (case preserved for display). */
interface ExpectedRepository {
  readonly owner: string;
  readonly repo: string;
}

interface TrustedBuilder {
  /** `https://github.com/OWNER/REPO/PATH` */
  readonly path: string;
  /** A required ref, or undefined for any release tag. */
  readonly ref: string | undefined;
}

const GITHUB = "https://github.com/";
const NAME_RE = /^[A-Za-z0-9_.-]+$/;
const RELEASE_TAG_RE = /^refs\/tags\/v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$/;

function verifyOne(
  attestation: UntrustedAttestation,
  options: VerifyProvenanceOptions,
  expected: ExpectedRepository,
  builders: readonly TrustedBuilder[],
): VerifiedProvenance {
  // 0. Shape: a bundle either way.
  const bundle: Bundle = attestation.kind === "cosign"
    ? cosignAttestationToBundle(attestation.layer)
    : parseBundle(attestation.bundle);
  const leaf = leafCertificate(bundle);

  // 1. The signer must be a trusted builder at a release tag (read from the still-untrusted
  //    certificate; step 2 then requires exactly this identity, so a forged one fails there).
  const untrustedSan = sanOf(leaf);
  const builder = checkBuilder(untrustedSan, builders);

  // 2. The cryptography and the exact identity.
  const verified: VerifiedBundle = verifyBundle(bundle, {
    artifact: { digest: options.imageDigest },
    policy: { kind: "identity", identity: untrustedSan, issuer: GITHUB_ACTIONS_ISSUER },
    ...(attestation.kind === "cosign" ? { legacyEnvelopeBytes: attestation.layer.envelope } : {}),
    ...(options.trustedRoot === undefined ? {} : { trustedRoot: options.trustedRoot }),
  });
  if (verified.signer.kind !== "certificate" || verified.signer.identity !== untrustedSan) {
    throw new DangerzoneError(
      "POLICY_IDENTITY_MISMATCH",
      "the attestation's signer is not the expected builder",
    );
  }
  const signer = verified.signer.identity;
  const payload = verified.dsse?.payload;
  if (payload === undefined) {
    throw new DangerzoneError("ATTESTATION_INVALID", "the attestation is not a DSSE envelope", {
      hint: "provenance must be an in-toto statement in a DSSE envelope",
    });
  }

  // 3. The certificate's claims (the certificate verified in step 2).
  const claims = readFulcioGithubClaims(leaf);
  if (claims.issuer !== GITHUB_ACTIONS_ISSUER) {
    throw new DangerzoneError(
      "POLICY_IDENTITY_MISMATCH",
      `the certificate's OIDC issuer '${(claims.issuer ?? "(none)").slice(0, 100)}' is not GitHub Actions`,
    );
  }
  if (claims.sourceRepository === undefined) {
    throw new DangerzoneError("CERTIFICATE_INVALID", "the signing certificate names no source repository");
  }
  checkRepository(claims.sourceRepository, expected, "the signing certificate's source repository");

  // 4. The statement.
  const facts = readProvenanceFacts(payload);
  const allowed = attestation.kind === "cosign"
    ? [SLSA_PROVENANCE_V02]
    : [SLSA_PROVENANCE_V02, SLSA_PROVENANCE_V1];
  if (!allowed.includes(facts.predicateType)) {
    throw new DangerzoneError(
      "POLICY_PREDICATE_MISMATCH",
      `the attestation's predicateType '${facts.predicateType}' is not ${allowed.join(" or ")}`,
    );
  }
  const subject = checkSubject(facts, options.imageDigest);
  if (facts.builderId !== signer) {
    throw new DangerzoneError(
      "POLICY_PREDICATE_MISMATCH",
      `the provenance's builder id '${facts.builderId.slice(0, 200)}' is not its signer '${signer}'`,
    );
  }

  // 5. The source.
  const trigger = parseGitUri(facts.triggerUri, "the provenance's trigger (configSource) URI");
  const source = parseGitUri(facts.sourceUri, "the provenance's source (first material) URI");
  checkRepository(`${trigger.owner}/${trigger.repo}`, expected, "the provenance's trigger repository");
  checkRepository(`${source.owner}/${source.repo}`, expected, "the provenance's source repository");
  if (facts.triggerUri !== facts.sourceUri) {
    throw new DangerzoneError(
      "POLICY_REJECTED",
      `the provenance's trigger '${facts.triggerUri.slice(0, 200)}' and source ` +
        `'${facts.sourceUri.slice(0, 200)}' differ`,
    );
  }
  checkCertificateAgrees(claims, facts, trigger);

  // 6. The optional pins.
  const policy = options.policy;
  if (policy.workflow !== undefined && policy.workflow !== facts.workflow) {
    throw new DangerzoneError(
      "POLICY_REJECTED",
      `the image was built by workflow '${facts.workflow.slice(0, 200)}', not '${policy.workflow}'`,
    );
  }
  if (policy.branch !== undefined) {
    const branch = facts.branch();
    if (branch !== policy.branch) {
      throw new DangerzoneError(
        "POLICY_REJECTED",
        `the image was built from branch '${branch.slice(0, 200)}', not '${policy.branch}'`,
      );
    }
  }
  if (policy.tag !== undefined) {
    const tag = facts.tag();
    if (tag !== policy.tag) {
      throw new DangerzoneError(
        "POLICY_REJECTED",
        `the image was built from tag '${tag.slice(0, 200)}', not '${policy.tag}'`,
      );
    }
  }

  const entry = verified.tlogEntries[0];
  if (entry === undefined) {
    throw new DangerzoneError("TLOG_MISSING", "the attestation has no transparency-log entry");
  }
  return {
    imageDigest: options.imageDigest,
    subjectName: subject.name,
    predicateType: facts.predicateType,
    buildType: facts.buildType,
    builder: signer,
    slsaLevel3: builder.path === SLSA_CONTAINER_GENERATOR,
    repository: `${source.owner}/${source.repo}`,
    ref: source.ref,
    commit: facts.commit,
    workflow: facts.workflow,
    trigger: claims.trigger,
    buildStartedOn: facts.buildStartedOn,
    buildFinishedOn: facts.buildFinishedOn,
    logEntry: {
      logIndex: entry.logIndex,
      logId: entry.logId,
      integratedTime: entry.integratedTime,
      kind: entry.kind,
    },
    source: attestation.source,
    [VERIFIED]: true,
  };
}

/** `OWNER/REPO` from the accepted spellings; anything else is a usage error. */
function parseExpectedRepository(text: string): ExpectedRepository {
  let rest = text;
  for (const prefix of ["git+https://github.com/", "https://github.com/", "github.com/"]) {
    if (rest.startsWith(prefix)) {
      rest = rest.slice(prefix.length);
      break;
    }
  }
  const parts = rest.split("/");
  const [owner, repo] = parts;
  if (
    parts.length !== 2 || owner === undefined || repo === undefined || !NAME_RE.test(owner) ||
    !NAME_RE.test(repo) || repo === "." || repo === ".."
  ) {
    throw new DangerzoneError("USAGE", `--repository '${text.slice(0, 200)}' is not OWNER/REPO`, {
      hint: "for example --repository freedomofpress/dangerzone",
    });
  }
  return { owner, repo };
}

function parseBuilders(extra: readonly string[]): TrustedBuilder[] {
  const out: TrustedBuilder[] = [];
  for (const text of extra) {
    const at = text.indexOf("@");
    const path = at === -1 ? text : text.slice(0, at);
    let ref = at === -1 ? undefined : text.slice(at + 1);
    if (ref !== undefined && /^v[0-9]/.test(ref)) ref = `refs/tags/${ref}`;
    const segments = path.startsWith(GITHUB) ? path.slice(GITHUB.length).split("/") : [];
    if (segments.length < 3 || segments.some((s) => s === "" || s === "." || s === "..")) {
      throw new DangerzoneError("USAGE", `--builder '${text.slice(0, 200)}' is not a GitHub workflow URI`, {
        hint: "for example https://github.com/OWNER/REPO/.github/workflows/build.yml@refs/tags/v1.2.3",
      });
    }
    if (ref !== undefined && !RELEASE_TAG_RE.test(ref)) {
      throw new DangerzoneError("USAGE", `--builder '${text.slice(0, 200)}' is not pinned to a release tag`, {
        hint: "builders are trusted only at a full release tag: @refs/tags/vX.Y.Z",
      });
    }
    out.push({ path, ref });
  }
  // The default builder, unless a --builder entry pins (or repeats) it.
  if (!out.some((b) => b.path === SLSA_CONTAINER_GENERATOR)) {
    out.unshift({ path: SLSA_CONTAINER_GENERATOR, ref: undefined });
  }
  return out;
}

/** Step 1: the SAN is a trusted builder at a full `vX.Y.Z` release tag. */
function checkBuilder(san: string, builders: readonly TrustedBuilder[]): TrustedBuilder {
  const at = san.indexOf("@");
  const path = at === -1 ? san : san.slice(0, at);
  const ref = at === -1 ? "" : san.slice(at + 1);
  const builder = builders.find((b) => b.path === path);
  if (builder === undefined) {
    throw new DangerzoneError(
      "POLICY_IDENTITY_MISMATCH",
      `the attestation was signed by '${san.slice(0, 200)}', which is not a trusted builder`,
      {
        hint: `trusted: ${builders.map((b) => b.path + (b.ref === undefined ? "" : `@${b.ref}`)).join(", ")}`,
      },
    );
  }
  if (!RELEASE_TAG_RE.test(ref)) {
    throw new DangerzoneError(
      "POLICY_IDENTITY_MISMATCH",
      `the builder '${path}' ran at '${ref.slice(0, 100)}', not at a release tag refs/tags/vX.Y.Z`,
      { hint: "only released builder versions are trusted, never a branch" },
    );
  }
  if (builder.ref !== undefined && builder.ref !== ref) {
    throw new DangerzoneError(
      "POLICY_IDENTITY_MISMATCH",
      `the builder ran at '${ref}', not at the required '${builder.ref}'`,
    );
  }
  return builder;
}

/** Step 4: exactly one subject, with the image digest. */
function checkSubject(facts: ProvenanceFacts, imageDigest: Digest) {
  const only = facts.subjects[0];
  if (only === undefined || facts.subjects.length !== 1) {
    throw new DangerzoneError(
      "POLICY_DIGEST_MISMATCH",
      `the provenance has ${facts.subjects.length} subjects; exactly one (the image) is required`,
    );
  }
  if (only.digest["sha256"] !== digestHex(imageDigest)) {
    throw new DangerzoneError(
      "POLICY_DIGEST_MISMATCH",
      `the provenance is about sha256:${
        (only.digest["sha256"] ?? "(none)").slice(0, 64)
      }, not ${imageDigest}`,
      { hint: "the attestation belongs to another image" },
    );
  }
  return only;
}

interface GitUri {
  readonly owner: string;
  readonly repo: string;
  readonly ref: string;
}

/** `git+https://github.com/OWNER/REPO@REF`, strictly. */
function parseGitUri(uri: string, what: string): GitUri {
  const m = /^git\+https:\/\/github\.com\/([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+)@(.+)$/.exec(uri);
  const [, owner, repo, ref] = m ?? [];
  if (owner === undefined || repo === undefined || ref === undefined) {
    throw new DangerzoneError(
      "POLICY_REJECTED",
      `${what} '${uri.slice(0, 200)}' is not git+https://github.com/OWNER/REPO@REF`,
    );
  }
  return { owner, repo, ref };
}

/** GitHub owner and repository names are case-insensitive; the comparison is otherwise exact. */
function checkRepository(actual: string, expected: ExpectedRepository, what: string): void {
  const want = `${expected.owner}/${expected.repo}`;
  if (actual.toLowerCase() !== want.toLowerCase()) {
    throw new DangerzoneError("POLICY_REJECTED", `${what} is '${actual.slice(0, 200)}', not '${want}'`, {
      hint: "the image was built from another repository",
    });
  }
}

/** Step 5: the certificate's (verified) claims agree with the predicate wherever both exist. */
function checkCertificateAgrees(
  claims: ReturnType<typeof readFulcioGithubClaims>,
  facts: ProvenanceFacts,
  trigger: GitUri,
): void {
  const mismatch = (what: string, cert: string, prov: string) =>
    new DangerzoneError(
      "POLICY_REJECTED",
      `the certificate's ${what} '${cert.slice(0, 200)}' disagrees with the provenance ('${
        prov.slice(0, 200)
      }')`,
    );
  const repo = `${trigger.owner}/${trigger.repo}`;
  if (claims.sourceRepository !== undefined && claims.sourceRepository.toLowerCase() !== repo.toLowerCase()) {
    throw mismatch("source repository", claims.sourceRepository, repo);
  }
  if (claims.sourceRef !== undefined && claims.sourceRef !== trigger.ref) {
    throw mismatch("source ref", claims.sourceRef, trigger.ref);
  }
  if (
    claims.sourceDigest !== undefined && facts.commit !== undefined && claims.sourceDigest !== facts.commit
  ) {
    throw mismatch("source commit", claims.sourceDigest, facts.commit);
  }
  if (claims.buildConfigUri !== undefined) {
    const at = claims.buildConfigUri.lastIndexOf("@");
    const prefix = `${GITHUB}${claims.sourceRepository ?? repo}/`;
    const path = at === -1 ? "" : claims.buildConfigUri.slice(0, at);
    const ref = at === -1 ? "" : claims.buildConfigUri.slice(at + 1);
    if (!path.startsWith(prefix) || path.slice(prefix.length) !== facts.workflow) {
      throw mismatch("build config", claims.buildConfigUri, facts.workflow);
    }
    if (ref !== trigger.ref) throw mismatch("build config ref", ref, trigger.ref);
  }
}

function leafCertificate(bundle: Bundle): Uint8Array {
  const material = bundle.verificationMaterial.content;
  const der = material.$case === "x509CertificateChain"
    ? material.x509CertificateChain.certificates[0]?.rawBytes
    : material.$case === "certificate"
    ? material.certificate.rawBytes
    : undefined;
  if (der === undefined) {
    throw new DangerzoneError(
      "POLICY_IDENTITY_MISMATCH",
      "the attestation is signed with a key, not by a builder",
      {
        hint: "SLSA provenance must be signed keylessly by a GitHub Actions builder",
      },
    );
  }
  return new Uint8Array(der);
}

function sanOf(der: Uint8Array): string {
  let san: string | undefined;
  try {
    san = X509Certificate.parse(Buffer.from(der)).extSubjectAltName?.uri;
  } catch (err) {
    throw new DangerzoneError("CERTIFICATE_INVALID", "the attestation's certificate does not parse", {
      cause: err,
    });
  }
  if (san === undefined || san === "") {
    throw new DangerzoneError(
      "POLICY_IDENTITY_MISMATCH",
      "the attestation's certificate has no URI identity",
    );
  }
  return san;
}

/** Any exception from one attestation becomes a verification failure naming where it came from. */
function asVerificationError(err: unknown, source: string): DangerzoneError {
  if (isDangerzoneError(err)) {
    if (err.code === "USAGE") throw err;
    return err;
  }
  const message = err instanceof Error ? err.message : String(err);
  return new DangerzoneError(
    "ATTESTATION_INVALID",
    `the attestation from ${source} could not be verified: ${message.slice(0, 200)}`,
    { cause: err },
  );
}

/** A wrong predicate type says least: prefer any other failure. */
function mostTelling(failures: readonly DangerzoneError[]): DangerzoneError {
  const best = failures.find((f) => f.code !== "POLICY_PREDICATE_MISMATCH") ?? failures[0];
  if (best === undefined) {
    return new DangerzoneError("SIGNATURE_MISSING", "no provenance attestation verified");
  }
  return best;
}
