/**
 * `attest-provenance IMAGE --repository OWNER/REPO [--builder ID] [--workflow PATH] [--branch NAME]
 * [--tag NAME] [--trusted-root FILE]`: verify the keyless SLSA provenance attestation of an image
 * (a registry reference, or `oci:DIR` for a `cosign save` layout) offline against the Sigstore trusted
 * root, and print the verified claims. Exit 0 verified, 10 not.
 *
 * @module
 */
import { DangerzoneError } from "../errors.ts";
import { parseReference } from "../oci/reference.ts";
import type { RegistryClient } from "../registry/client.ts";
import { discoverAttestations, type ImageLocation } from "../sigstore/provenance/attestation_discovery.ts";
import {
  type ProvenancePolicy,
  type VerifiedProvenance,
  verifyProvenance,
} from "../sigstore/provenance/provenance.ts";
import type { SigstoreTrustedRoot } from "../sigstore/crypto/trusted_root.ts";
import { registryClientFrom, trustedRootFrom } from "./_context.ts";
import type { CommonOptions } from "./common.ts";
import type { Output } from "./output.ts";

/** The options of `attest-provenance`, as commander parses them. */
export interface AttestProvenanceCliOptions extends CommonOptions {
  repository?: unknown;
  builder?: unknown;
  workflow?: unknown;
  branch?: unknown;
  tag?: unknown;
}

/** The prefix that selects an OCI layout directory instead of a registry reference. */
export const OCI_LAYOUT_PREFIX = "oci:";

/**
 * Runs `attest-provenance`; returns 0 when the image's provenance verifies under the policy, throws a
 * `DangerzoneError` naming the failed check otherwise.
 *
 * @example
 * ```ts
 * import { runAttestProvenance } from "./attest_provenance.ts";
 * import { Output } from "./output.ts";
 * await runAttestProvenance(["oci:./layout"], { repository: "freedomofpress/dangerzone" }, new Output({}));
 * ```
 */
export async function runAttestProvenance(
  args: string[],
  options: AttestProvenanceCliOptions & Record<string, unknown>,
  out: Output,
): Promise<0> {
  const image = args[0];
  if (image === undefined || image === "") {
    throw usage("attest-provenance needs IMAGE (a reference or oci:DIR)");
  }
  const policy = readPolicy(options);
  const trustedRoot = await trustedRootFrom(options);

  let client: RegistryClient | undefined;
  try {
    let location: ImageLocation;
    if (image.startsWith(OCI_LAYOUT_PREFIX)) {
      const path = image.slice(OCI_LAYOUT_PREFIX.length);
      if (path === "") throw usage("oci: needs a directory, e.g. oci:./dangerzone-layout");
      location = { kind: "layout", path };
    } else {
      const ref = parseReference(image);
      client = await registryClientFrom(options, out);
      location = { kind: "registry", client, ref };
    }
    const found = await discoverAttestations(location, { onLog: (line) => out.debugLine(line) });
    out.debugLine(`${found.attestations.length} attestation(s) for ${found.imageDigest}`);
    const claims = verifyProvenance(found.attestations, {
      imageDigest: found.imageDigest,
      policy,
      trustedRoot,
    });
    report(out, found.name, found.tag, claims, trustedRoot);
    return 0;
  } finally {
    client?.close();
  }
}

function report(
  out: Output,
  name: string,
  tag: string | undefined,
  claims: VerifiedProvenance,
  trustedRoot: SigstoreTrustedRoot,
): void {
  const shown = `${name}${tag === undefined ? "" : `:${tag}`}@${claims.imageDigest}`;
  out.line("🎉 Successfully verified image");
  out.line(`'${shown}'`);
  out.line("and its associated claims:");
  out.line(
    claims.slsaLevel3
      ? "- ✅ SLSA Level 3 provenance"
      : `- ✅ SLSA provenance from the trusted builder ${claims.builder}`,
  );
  out.line(`- ✅ GitHub repo: ${claims.repository}`);
  out.line(`- ✅ GitHub actions workflow: ${claims.workflow}`);
  if (tag === undefined) {
    out.line(
      name.startsWith(OCI_LAYOUT_PREFIX)
        ? "(the layout names no tag: the image is shown by its directory and digest)"
        : "(IMAGE was given by digest: no tag is shown)",
    );
  }
  const loggedAt = claims.logEntry.integratedTime === undefined
    ? null
    : new Date(claims.logEntry.integratedTime * 1000).toISOString();
  out.result({
    ok: true,
    image: { name, tag: tag ?? null, digest: claims.imageDigest, display: shown },
    claims: {
      slsaLevel: claims.slsaLevel3 ? 3 : null,
      predicateType: claims.predicateType,
      buildType: claims.buildType,
      builder: claims.builder,
      repository: claims.repository,
      ref: claims.ref,
      commit: claims.commit ?? null,
      workflow: claims.workflow,
      trigger: claims.trigger ?? null,
      buildTime: claims.buildStartedOn ?? claims.buildFinishedOn ?? loggedAt,
      buildStartedOn: claims.buildStartedOn ?? null,
      buildFinishedOn: claims.buildFinishedOn ?? null,
      loggedAt,
      logIndex: claims.logEntry.logIndex,
      logId: claims.logEntry.logId,
      tlogKind: claims.logEntry.kind,
      subjectName: claims.subjectName,
    },
    attestation: claims.source,
    trustedRoot: trustedRoot.source,
  });
}

function readPolicy(options: AttestProvenanceCliOptions): ProvenancePolicy {
  const { repository, builder, workflow, branch, tag } = options;
  if (typeof repository !== "string" || repository === "") {
    throw usage("attest-provenance needs --repository OWNER/REPO");
  }
  const text = (value: unknown, flag: string): string | undefined => {
    if (value === undefined) return undefined;
    if (typeof value !== "string" || value === "") throw usage(`${flag} needs a value`);
    return value;
  };
  const builderId = text(builder, "--builder");
  const workflowPath = text(workflow, "--workflow");
  const branchName = text(branch, "--branch");
  const tagName = text(tag, "--tag");
  return {
    repository,
    ...(builderId === undefined ? {} : { builders: [builderId] }),
    ...(workflowPath === undefined ? {} : { workflow: workflowPath }),
    ...(branchName === undefined ? {} : { branch: branchName }),
    ...(tagName === undefined ? {} : { tag: tagName }),
  };
}

function usage(message: string): DangerzoneError {
  return new DangerzoneError("USAGE", message, { hint: "run attest-provenance --help" });
}
