/**
 * The docker-reference policy (DESIGN rule 2, issue 4): the signed docker-reference must name the
 * repository the image is fetched from, exactly after normalisation on both sides, or the one `--identity`
 * names (a mirror). Private to `src/update/`.
 *
 * @module
 */
import { DangerzoneError, isDangerzoneError } from "../errors.ts";
import { parseReference, type Reference } from "../oci/reference.ts";
import type { SignatureResult } from "../sigstore/cosign/policy.ts";
import { repositoryOf } from "../sigstore/formats/simple_signing.ts";
import type { UpdateContext } from "./context.ts";

/**
 * The repository the signed docker-reference must name: `--identity` when given (a mirror), else the
 * repository the image is fetched from; both normalised (`docker.io`, lowercase host, no tag or digest).
 */
export function expectedRepository(ctx: Pick<UpdateContext, "identity">, fetchedFrom: Reference): string {
  if (ctx.identity === undefined) return fetchedFrom.name();
  const normalised = normaliseRepository(ctx.identity);
  if (normalised === null) {
    throw new DangerzoneError(
      "USAGE",
      `--identity '${ctx.identity.slice(0, 120)}' is not a repository name`,
      {
        hint: "give the repository the publisher signed, e.g. ghcr.io/freedomofpress/dangerzone/v1",
      },
    );
  }
  return normalised;
}

/** A reference's repository in normal form, or null when it does not parse. */
export function normaliseRepository(untrusted: string): string | null {
  try {
    return parseReference(repositoryOf(untrusted)).name();
  } catch (err) {
    if (isDangerzoneError(err, "REFERENCE_INVALID")) return null;
    throw err;
  }
}

/** The reference rule (DESIGN rule 2): the signed docker-reference names the expected repository exactly. */
export function enforceReference(result: SignatureResult, expected: string): SignatureResult {
  if (!("verified" in result)) return result;
  const signed = result.verified.dockerReference;
  if (normaliseRepository(signed) === expected) return result;
  return {
    index: result.index,
    error: new DangerzoneError(
      "POLICY_REFERENCE_MISMATCH",
      `rule 2 (payload): the signed docker-reference is "${signed.slice(0, 120)}", not "${expected}"`,
      { hint: "if you pull through a mirror, name the signed repository with --identity" },
    ),
  };
}
