/**
 * `verifyCosignAttestation()`: the real slsa-verifier container vectors (cosign save layouts with
 * legacy keyless attestations, Rekor intoto 0.0.1 and dsse 0.0.1) verify against the production
 * root with the builder identity and the image digest; crafted variants fail on exactly one check.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { isDangerzoneError } from "../../../src/errors.ts";
import { type Digest, parseDigest } from "../../../src/oci/digest.ts";
import type { BundlePolicy } from "../../../src/sigstore/crypto/bundle_verifier.ts";
import {
  cosignAttestationToBundle,
  type UntrustedCosignAttestation,
  verifyCosignAttestation,
} from "../../../src/sigstore/provenance/cosign_attestation.ts";
import { VECTORS } from "../crypto/_conformance_cases.ts";

const BASE = `${VECTORS}slsa-verifier/cli/slsa-verifier/testdata/gha_generic_container/`;
const VERSIONS = {
  "v1.4.0": "intoto/0.0.1",
  "v1.9.0": "intoto/0.0.1",
  "v1.10.0": "dsse/0.0.1",
  "v2.1.0": "dsse/0.0.1",
};

interface Vector {
  layer: UntrustedCosignAttestation;
  imageDigest: Digest;
  policy: BundlePolicy;
}

function record(value: unknown): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Error("fixture: not an object");
  }
  return { ...value };
}

/** Loads a vector's attestation layer via index.json `kind` annotations. */
function load(version: string): Vector {
  const dir = `${BASE}${version}/container_workflow_dispatch/`;
  const blob = (digest: unknown) => Deno.readFileSync(`${dir}blobs/sha256/${String(digest).slice(7)}`);
  const index = record(JSON.parse(Deno.readTextFileSync(`${dir}index.json`)));
  const manifests = index["manifests"];
  assert.ok(Array.isArray(manifests));
  const atts = manifests.map(record).find((m) =>
    record(m["annotations"])["kind"] === "dev.cosignproject.cosign/atts"
  );
  assert.ok(atts !== undefined);
  const manifest = record(JSON.parse(new TextDecoder().decode(blob(atts["digest"]))));
  const layers = manifest["layers"];
  assert.ok(Array.isArray(layers) && layers.length === 1);
  const layer = record(layers[0]);
  const annotations: Record<string, string> = {};
  for (const [k, v] of Object.entries(record(layer["annotations"]))) annotations[k] = String(v);
  return {
    layer: { envelope: blob(layer["digest"]), annotations },
    imageDigest: parseDigest(
      Deno.readTextFileSync(`${BASE}${version}/container_workflow_dispatch.digest`).trim(),
    ),
    policy: {
      kind: "identity",
      identity:
        `https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/${version}`,
      issuer: "https://token.actions.githubusercontent.com",
    },
  };
}

function rejects(fn: () => unknown, code: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isDangerzoneError(e), String(e));
    assert.equal(e.code, code, e.message);
    return true;
  });
}

for (const [version, kind] of Object.entries(VERSIONS)) {
  Deno.test(`verifyCosignAttestation() verifies the slsa-verifier ${version} container attestation`, () => {
    const v = load(version);
    const verified = verifyCosignAttestation(v.layer, { imageDigest: v.imageDigest, policy: v.policy });
    assert.equal(verified.tlogEntries[0]?.kind, kind);
    assert.equal(verified.statement?.predicateType, "https://slsa.dev/provenance/v0.2");
    assert.equal(verified.statement?.subject[0]?.digest["sha256"], v.imageDigest.slice(7));
    assert.deepEqual(verified.signer, {
      kind: "certificate",
      identity: v.policy.kind === "identity" ? v.policy.identity : "",
      issuer: "https://token.actions.githubusercontent.com",
    });
  });

  Deno.test(`verifyCosignAttestation() ${version}: another image digest is refused`, () => {
    const v = load(version);
    rejects(
      () =>
        verifyCosignAttestation(v.layer, {
          imageDigest: parseDigest(`sha256:${"a".repeat(64)}`),
          policy: v.policy,
        }),
      "POLICY_DIGEST_MISMATCH",
    );
  });

  Deno.test(`verifyCosignAttestation() ${version}: another builder identity is refused`, () => {
    const v = load(version);
    const policy: BundlePolicy = {
      kind: "identity",
      identity:
        `https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/${version}.1`,
      issuer: "https://token.actions.githubusercontent.com",
    };
    rejects(
      () => verifyCosignAttestation(v.layer, { imageDigest: v.imageDigest, policy }),
      "POLICY_IDENTITY_MISMATCH",
    );
  });

  Deno.test(`verifyCosignAttestation() ${version}: a tampered SET is refused`, () => {
    const v = load(version);
    const set = record(JSON.parse(v.layer.annotations["dev.sigstore.cosign/bundle"] ?? ""));
    const sig = Buffer.from(String(set["SignedEntryTimestamp"]), "base64");
    sig[sig.length - 1] = (sig[sig.length - 1] ?? 0) ^ 1;
    set["SignedEntryTimestamp"] = sig.toString("base64");
    const layer = {
      ...v.layer,
      annotations: { ...v.layer.annotations, "dev.sigstore.cosign/bundle": JSON.stringify(set) },
    };
    rejects(
      () => verifyCosignAttestation(layer, { imageDigest: v.imageDigest, policy: v.policy }),
      "TLOG_SET_INVALID",
    );
  });
}

Deno.test("verifyCosignAttestation() intoto 0.0.1: envelope bytes other than the logged ones are refused", () => {
  const v = load("v1.4.0");
  // Same envelope, re-serialised: the signature still verifies, only the logged envelope hash differs.
  const reserialised = new TextEncoder().encode(
    JSON.stringify(JSON.parse(new TextDecoder().decode(v.layer.envelope)), null, 1),
  );
  rejects(
    () =>
      verifyCosignAttestation({ ...v.layer, envelope: reserialised }, {
        imageDigest: v.imageDigest,
        policy: v.policy,
      }),
    "TLOG_BODY_MISMATCH",
  );
});

Deno.test("cosignAttestationToBundle() builds a v0.1 bundle with the leaf only and the SET", () => {
  const v = load("v2.1.0");
  const bundle = cosignAttestationToBundle(v.layer);
  assert.equal(bundle.mediaType, "application/vnd.dev.sigstore.bundle+json;version=0.1");
  const material = bundle.verificationMaterial.content;
  assert.equal(material.$case, "x509CertificateChain");
  if (material.$case === "x509CertificateChain") {
    assert.equal(material.x509CertificateChain.certificates.length, 1);
  }
  const entry = bundle.verificationMaterial.tlogEntries[0];
  assert.equal(entry?.kindVersion?.kind, "dsse");
  assert.ok(entry?.inclusionPromise);
});

Deno.test("cosignAttestationToBundle() refuses missing or malformed annotations", () => {
  const v = load("v1.10.0");
  const without = (key: string) => {
    const annotations = { ...v.layer.annotations };
    delete annotations[key];
    return { ...v.layer, annotations };
  };
  rejects(() => cosignAttestationToBundle(without("dev.sigstore.cosign/bundle")), "TLOG_MISSING");
  rejects(() => cosignAttestationToBundle(without("dev.sigstore.cosign/certificate")), "ATTESTATION_INVALID");
  rejects(
    () =>
      cosignAttestationToBundle({
        ...v.layer,
        annotations: { ...v.layer.annotations, "dev.sigstore.cosign/bundle": "{}" },
      }),
    "ATTESTATION_INVALID",
  );
  rejects(
    () => cosignAttestationToBundle({ ...v.layer, envelope: new TextEncoder().encode("{") }),
    "ATTESTATION_INVALID",
  );
  const body = record(JSON.parse(v.layer.annotations["dev.sigstore.cosign/bundle"] ?? ""));
  const payload = record(body["Payload"]);
  payload["body"] = btoa(JSON.stringify({ kind: "rekord", apiVersion: "0.0.1" }));
  body["Payload"] = payload;
  rejects(
    () =>
      cosignAttestationToBundle({
        ...v.layer,
        annotations: { ...v.layer.annotations, "dev.sigstore.cosign/bundle": JSON.stringify(body) },
      }),
    "ATTESTATION_INVALID",
  );
});
