/**
 * `verifyProvenance()`: every slsa-verifier container vector verifies with the exact policy, and each
 * policy check refuses the variant made to break it (repository spelling, builder, branch, digest,
 * certificate, payload, Rekor entry), with the error code of that check.
 */
import assert from "node:assert/strict";
import { isDangerzoneError } from "../../../src/errors.ts";
import { parseDigest } from "../../../src/oci/digest.ts";
import { discoverAttestations } from "../../../src/sigstore/provenance/attestation_discovery.ts";
import {
  type ProvenancePolicy,
  SLSA_CONTAINER_GENERATOR,
  type UntrustedAttestation,
  type VerifiedProvenance,
  verifyProvenance,
} from "../../../src/sigstore/provenance/provenance.ts";
import {
  beaconCertificatePem,
  imageDigestOf,
  layoutOf,
  readLayout,
  SLSA_REPOSITORY,
  SLSA_VERSIONS,
  tamperPayload,
} from "./_provenance_vectors.ts";

function attestation(version: string, change: Partial<{
  envelope: Uint8Array;
  annotations: Record<string, string>;
}> = {}): UntrustedAttestation {
  const parts = readLayout(version);
  return {
    kind: "cosign",
    source: `test ${version}`,
    layer: {
      envelope: change.envelope ?? parts.envelope,
      annotations: change.annotations ?? parts.annotations,
    },
  };
}

function verify(
  version: string,
  policy: Partial<ProvenancePolicy> = {},
  attestations: UntrustedAttestation[] = [attestation(version)],
  digest = imageDigestOf(version),
): VerifiedProvenance {
  return verifyProvenance(attestations, {
    imageDigest: parseDigest(digest),
    policy: { repository: SLSA_REPOSITORY, ...policy },
  });
}

function rejects(fn: () => unknown, code: string, includes?: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isDangerzoneError(e), String(e));
    assert.equal(e.code, code, e.message);
    if (includes !== undefined) assert.ok(e.message.includes(includes), e.message);
    assert.ok(!e.message.includes("\n"));
    return true;
  });
}

const BRANCH_OF: Record<string, string> = { "v1.4.0": "refs/heads/main", "v2.1.0": "refs/heads/main" };

for (const [version, kind] of Object.entries(SLSA_VERSIONS)) {
  Deno.test(`verifyProvenance() verifies the ${version} container provenance with the exact policy`, async () => {
    const found = await discoverAttestations({ kind: "layout", path: layoutOf(version) });
    const claims = verifyProvenance(found.attestations, {
      imageDigest: found.imageDigest,
      policy: { repository: SLSA_REPOSITORY },
    });
    assert.equal(claims.imageDigest, imageDigestOf(version));
    assert.equal(claims.builder, `${SLSA_CONTAINER_GENERATOR}@refs/tags/${version}`);
    assert.equal(claims.slsaLevel3, true);
    assert.equal(claims.repository, SLSA_REPOSITORY);
    assert.equal(claims.ref, BRANCH_OF[version] ?? "refs/tags/v13.0.30");
    assert.equal(claims.workflow, ".github/workflows/verifier-e2e.all.workflow_dispatch.main.all.slsa3.yml");
    assert.match(claims.commit ?? "", /^[0-9a-f]{40}$/);
    assert.equal(claims.logEntry.kind, kind);
    assert.equal(claims.predicateType, "https://slsa.dev/provenance/v0.2");
  });

  Deno.test(`verifyProvenance() ${version}: the optional pins pass when they match`, () => {
    const ref = BRANCH_OF[version];
    verify(version, {
      branch: "main",
      workflow: ".github/workflows/verifier-e2e.all.workflow_dispatch.main.all.slsa3.yml",
      ...(ref === undefined ? { tag: "v13.0.30" } : {}),
      builders: [`${SLSA_CONTAINER_GENERATOR}@refs/tags/${version}`],
    });
    // GitHub compares owner and repository names without case.
    verify(version, { repository: "Slsa-Framework/Example-Package" });
    verify(version, { repository: "git+https://github.com/slsa-framework/example-package" });
  });

  Deno.test(`verifyProvenance() ${version}: a repository that differs at all is refused`, () => {
    for (
      const repository of [
        "slsa-framework/example-packagex",
        "slsa-framework/xexample-package",
        "slsa-framework/example-packagf",
        "slsa-framework/example-packag",
        "slsa-frameworks/example-package",
        "other/example-package",
        "slsa-framework/example",
        "slsa-framework/example-package.git",
      ]
    ) {
      rejects(() => verify(version, { repository }), "POLICY_REJECTED", repository);
    }
    for (const repository of ["example-package", "a/b/c", "slsa-framework/", "https://gitlab.com/a/b"]) {
      rejects(() => verify(version, { repository }), "USAGE");
    }
  });

  Deno.test(`verifyProvenance() ${version}: wrong --branch, --tag or --workflow is refused`, () => {
    rejects(() => verify(version, { branch: "master" }), "POLICY_REJECTED", "branch");
    rejects(() => verify(version, { branch: "mai" }), "POLICY_REJECTED", "branch");
    rejects(() => verify(version, { tag: "v13.0.3" }), "POLICY_REJECTED", "tag");
    rejects(
      () => verify(version, { workflow: ".github/workflows/release.yml" }),
      "POLICY_REJECTED",
      "workflow",
    );
  });

  Deno.test(`verifyProvenance() ${version}: a builder pinned to another version is refused`, () => {
    const other = version === "v1.4.0" ? "v1.9.0" : "v1.4.0";
    rejects(
      () => verify(version, { builders: [`${SLSA_CONTAINER_GENERATOR}@refs/tags/${other}`] }),
      "POLICY_IDENTITY_MISMATCH",
      other,
    );
    rejects(
      () => verify(version, { builders: [`${SLSA_CONTAINER_GENERATOR}@${other}`] }),
      "POLICY_IDENTITY_MISMATCH",
    );
    verify(version, { builders: [`${SLSA_CONTAINER_GENERATOR}@${version}`] });
    verify(version, { builders: [SLSA_CONTAINER_GENERATOR] });
  });

  Deno.test(`verifyProvenance() ${version}: an attestation for another digest is refused`, () => {
    const other = version === "v2.1.0" ? "v1.10.0" : "v2.1.0";
    rejects(
      () => verify(version, {}, [attestation(version)], imageDigestOf(other)),
      "POLICY_DIGEST_MISMATCH",
    );
  });

  Deno.test(`verifyProvenance() ${version}: a tampered payload is refused`, () => {
    const parts = readLayout(version);
    const envelope = tamperPayload(parts.envelope, (s) => s.replace("refs/heads/main", "refs/heads/mai2"));
    assert.throws(
      () => verify(version, {}, [attestation(version, { envelope })]),
      (e: unknown) => isDangerzoneError(e) && ["SIGNATURE_INVALID", "TLOG_BODY_MISMATCH"].includes(e.code),
    );
  });

  Deno.test(`verifyProvenance() ${version}: another builder's certificate is refused`, () => {
    const other = version === "v2.1.0" ? "v1.10.0" : "v2.1.0";
    const annotations = {
      ...readLayout(version).annotations,
      "dev.sigstore.cosign/certificate": readLayout(other).annotations["dev.sigstore.cosign/certificate"] ??
        "",
    };
    assert.throws(
      () => verify(version, {}, [attestation(version, { annotations })]),
      (e: unknown) =>
        isDangerzoneError(e) &&
        ["SIGNATURE_INVALID", "TLOG_BODY_MISMATCH", "CERTIFICATE_INVALID", "TLOG_SET_INVALID"].includes(
          e.code,
        ),
    );
  });

  Deno.test(`verifyProvenance() ${version}: a Rekor entry of another envelope is refused`, () => {
    const other = Object.entries(SLSA_VERSIONS).find(([v, k]) =>
      v !== version && k === SLSA_VERSIONS[version]
    )
      ?.[0] ?? "v2.1.0";
    const annotations = {
      ...readLayout(version).annotations,
      "dev.sigstore.cosign/bundle": readLayout(other).annotations["dev.sigstore.cosign/bundle"] ?? "",
    };
    assert.throws(
      () => verify(version, {}, [attestation(version, { annotations })]),
      (e: unknown) =>
        isDangerzoneError(e) &&
        ["TLOG_BODY_MISMATCH", "SIGNATURE_INVALID", "TLOG_SET_INVALID", "CERTIFICATE_INVALID"].includes(
          e.code,
        ),
    );
  });
}

Deno.test("verifyProvenance() refuses a workflow that is not a trusted builder, and a builder at a branch", () => {
  const annotations = {
    ...readLayout("v2.1.0").annotations,
    "dev.sigstore.cosign/certificate": beaconCertificatePem(),
  };
  const att = attestation("v2.1.0", { annotations });
  rejects(() => verify("v2.1.0", {}, [att]), "POLICY_IDENTITY_MISMATCH", "not a trusted builder");
  // Allowed as a builder, but it ran at a branch: refused before any signature is looked at.
  const beacon =
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml";
  rejects(() => verify("v2.1.0", { builders: [beacon] }, [att]), "POLICY_IDENTITY_MISMATCH", "release tag");
  rejects(() => verify("v2.1.0", { builders: [`${beacon}@refs/heads/main`] }, [att]), "USAGE");
  rejects(() => verify("v2.1.0", { builders: ["generator_container_slsa3.yml"] }, [att]), "USAGE");
});

Deno.test("verifyProvenance() with no attestation is SIGNATURE_MISSING; with several, any valid one passes", () => {
  rejects(() => verify("v2.1.0", {}, []), "SIGNATURE_MISSING");
  const broken = attestation("v2.1.0", { annotations: {} });
  const claims = verify("v2.1.0", {}, [broken, attestation("v2.1.0")]);
  assert.equal(claims.source, "test v2.1.0");
  // When all fail, the informative failure is reported.
  rejects(
    () => verify("v2.1.0", { repository: "a/b" }, [broken, attestation("v2.1.0")]),
    "ATTESTATION_INVALID",
  );
});

Deno.test("verifyProvenance() turns malformed attestations into one-line verification failures", () => {
  const parts = readLayout("v1.10.0");
  const env = JSON.parse(new TextDecoder().decode(parts.envelope));
  const variants: [string, UntrustedAttestation][] = [
    [
      "bad base64 payload",
      attestation("v1.10.0", {
        envelope: new TextEncoder().encode(JSON.stringify({ ...env, payload: "%%%not base64%%%" })),
      }),
    ],
    ["non-JSON envelope", attestation("v1.10.0", { envelope: new TextEncoder().encode("not json") })],
    [
      "non-JSON statement",
      attestation("v1.10.0", {
        envelope: tamperPayload(parts.envelope, () => "{not json"),
      }),
    ],
    ["missing annotations", attestation("v1.10.0", { annotations: {} })],
    ["oversize envelope", attestation("v1.10.0", { envelope: new Uint8Array(5 * 1024 * 1024) })],
    ["bundle garbage", { kind: "bundle", source: "x", bundle: new TextEncoder().encode("[1,2") }],
    ["bundle wrong shape", { kind: "bundle", source: "x", bundle: new TextEncoder().encode('{"a":1}') }],
  ];
  for (const [what, att] of variants) {
    assert.throws(() => verify("v1.10.0", {}, [att]), (e: unknown) => {
      assert.ok(isDangerzoneError(e), `${what}: ${String(e)}`);
      assert.ok(!e.message.includes("\n"), what);
      assert.notEqual(e.code, "INTERNAL", what);
      return true;
    }, what);
  }
});
