/**
 * `attest-provenance` end to end, as users run it: every slsa-verifier container vector verifies with
 * `--repository slsa-framework/example-package` from an `oci:DIR` layout and from a real registry
 * (CNCF distribution), printing the seed's output; every broken variant exits 10 with one line naming
 * the failed check, in both places.
 *
 * The vectors' image layers are pruned, and distribution refuses a manifest whose blobs it lacks, so
 * the registry holds the attestations (the `sha256-<hex>.att` tag, pushed with `RegistryClient`) and a
 * small loopback shim in front of it answers only the image manifest request from the layout bytes;
 * everything else goes to the real registry.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { parseDigest } from "../../src/oci/digest.ts";
import { parseReference } from "../../src/oci/reference.ts";
import { RegistryClient } from "../../src/registry/client.ts";
import { type CliResult, runCli } from "../_helpers/cli.ts";
import { pushLayoutAttestations } from "../_helpers/layout_attestations.ts";
import { createTestKey } from "../_helpers/cosign_signer.ts";
import { makeTempDir } from "../_helpers/process.ts";
import { BUNDLE_V03_MEDIA_TYPE, signImageBundle, TestRekorLog } from "../_helpers/sigstore_signer.ts";
import { startRegistry } from "../_helpers/registry.ts";
import {
  beaconCertificatePem,
  imageDigestOf,
  layoutOf,
  readLayout,
  SLSA_REPOSITORY,
  SLSA_VERSIONS,
  tamperPayload,
  type Variant,
  writeVariant,
} from "../sigstore/provenance/_provenance_vectors.ts";

const GENERATOR =
  "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml";
const BEACON =
  "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml";
const WORKFLOW = ".github/workflows/verifier-e2e.all.workflow_dispatch.main.all.slsa3.yml";

/** A broken case: the variant, extra flags, the error code and what the message must mention. */
interface Case {
  name: string;
  variant?: Variant;
  flags?: string[];
  code: string | string[];
  mentions?: RegExp;
}

function otherOf(version: string): string {
  return version === "v2.1.0" ? "v1.10.0" : "v2.1.0";
}

function casesFor(version: string): Case[] {
  const parts = readLayout(version);
  const other = readLayout(otherOf(version));
  const withAnnotation = (key: string, value: string): Variant => ({
    annotations: (a) => ({ ...a, [key]: value }),
  });
  return [
    { name: "a character appended", flags: ["--repository", `${SLSA_REPOSITORY}x`], code: "POLICY_REJECTED" },
    {
      name: "a character prepended",
      flags: ["--repository", "slsa-framework/xexample-package"],
      code: "POLICY_REJECTED",
    },
    {
      name: "a character changed",
      flags: ["--repository", "slsa-framework/example-packagf"],
      code: "POLICY_REJECTED",
    },
    {
      name: "another owner",
      flags: ["--repository", "freedomofpress/example-package"],
      code: "POLICY_REJECTED",
    },
    { name: "a wrong --branch", flags: ["--branch", "master"], code: "POLICY_REJECTED", mentions: /branch/ },
    { name: "a wrong --workflow", flags: ["--workflow", ".github/workflows/x.yml"], code: "POLICY_REJECTED" },
    {
      name: "a builder pinned to another release",
      flags: ["--builder", `${GENERATOR}@refs/tags/v9.9.9`],
      code: "POLICY_IDENTITY_MISMATCH",
    },
    {
      name: "an untrusted builder workflow",
      variant: withAnnotation("dev.sigstore.cosign/certificate", beaconCertificatePem()),
      code: "POLICY_IDENTITY_MISMATCH",
      mentions: /not a trusted builder/,
    },
    {
      name: "a builder at a branch instead of a tag",
      variant: withAnnotation("dev.sigstore.cosign/certificate", beaconCertificatePem()),
      flags: ["--builder", BEACON],
      code: "POLICY_IDENTITY_MISMATCH",
      mentions: /release tag/,
    },
    {
      name: "an attestation for another digest",
      variant: { imageOf: otherOf(version) },
      code: "POLICY_DIGEST_MISMATCH",
    },
    {
      name: "a swapped certificate",
      variant: withAnnotation(
        "dev.sigstore.cosign/certificate",
        other.annotations["dev.sigstore.cosign/certificate"] ?? "",
      ),
      code: ["SIGNATURE_INVALID", "TLOG_BODY_MISMATCH", "CERTIFICATE_INVALID"],
    },
    {
      name: "a tampered DSSE payload",
      variant: { envelope: (e) => tamperPayload(e, (s) => s.replace("example-package", "example-packagf")) },
      code: ["SIGNATURE_INVALID", "TLOG_BODY_MISMATCH"],
    },
    {
      name: "a Rekor entry of another envelope",
      variant: withAnnotation(
        "dev.sigstore.cosign/bundle",
        other.annotations["dev.sigstore.cosign/bundle"] ?? "",
      ),
      code: ["TLOG_BODY_MISMATCH", "SIGNATURE_INVALID", "TLOG_SET_INVALID", "CERTIFICATE_INVALID"],
    },
    {
      name: "missing annotations",
      variant: { annotations: () => ({}) },
      code: ["ATTESTATION_INVALID", "TLOG_MISSING"],
    },
    {
      name: "a bad base64 payload",
      variant: {
        envelope: () => {
          const env = JSON.parse(new TextDecoder().decode(parts.envelope));
          return new TextEncoder().encode(JSON.stringify({ ...env, payload: "!!not-base64!!" }));
        },
      },
      code: ["BUNDLE_INVALID", "ATTESTATION_INVALID", "SIGNATURE_INVALID", "TLOG_BODY_MISMATCH"],
    },
    {
      name: "a non-JSON statement",
      variant: { envelope: (e) => tamperPayload(e, () => "this is not json") },
      code: ["SIGNATURE_INVALID", "TLOG_BODY_MISMATCH", "ATTESTATION_INVALID"],
    },
    {
      name: "an oversize envelope",
      variant: { envelope: () => new Uint8Array(4 * 1024 * 1024 + 1).fill(0x20) },
      code: "ATTESTATION_INVALID",
      mentions: /limit/,
    },
  ];
}

/** Runs at most `n` jobs at a time. */
async function pool<T>(jobs: (() => Promise<T>)[], n = 8): Promise<T[]> {
  const out: T[] = new Array(jobs.length);
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < jobs.length) {
      const i = next++;
      const job = jobs[i];
      if (job !== undefined) out[i] = await job();
    }
  }));
  return out;
}

function attest(image: string, flags: string[] = [], json = false): Promise<CliResult> {
  const repo = flags.includes("--repository") ? [] : ["--repository", SLSA_REPOSITORY];
  return runCli(["attest-provenance", image, ...repo, ...flags, ...(json ? ["--json"] : [])]);
}

function assertSuccess(r: CliResult, shown: string, version: string): void {
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split("\n");
  assert.deepEqual(lines.slice(0, 6), [
    "🎉 Successfully verified image",
    `'${shown}@${imageDigestOf(version)}'`,
    "and its associated claims:",
    "- ✅ SLSA Level 3 provenance",
    `- ✅ GitHub repo: ${SLSA_REPOSITORY}`,
    `- ✅ GitHub actions workflow: ${WORKFLOW}`,
  ]);
}

function assertFailure(r: CliResult, c: Case, where: string): void {
  const label = `${where}: ${c.name}`;
  assert.equal(r.code, 10, `${label}: exit ${r.code}\n${r.stderr}`);
  const stderr = r.stderr.trimEnd().split("\n");
  assert.equal(stderr.length, 1, `${label}: ${r.stderr}`);
  assert.match(stderr[0] ?? "", /^error: /, label);
  const doc = JSON.parse(r.stdout);
  const codes = Array.isArray(c.code) ? c.code : [c.code];
  assert.ok(codes.includes(doc.error.code), `${label}: ${doc.error.code} ${doc.error.message}`);
  if (c.mentions !== undefined) assert.match(doc.error.message, c.mentions, label);
}

for (const version of Object.keys(SLSA_VERSIONS)) {
  Deno.test(`attest-provenance oci:DIR verifies the ${version} vector and prints the verified claims`, async () => {
    const dir = layoutOf(version);
    const r = await attest(`oci:${dir}`, ["--branch", "main", "--builder", `${GENERATOR}@${version}`]);
    assertSuccess(r, `oci:${dir}`, version);
    const json = await attest(`oci:${dir}`, [], true);
    assert.equal(json.code, 0, json.stderr);
    const doc = JSON.parse(json.stdout);
    assert.equal(doc.ok, true);
    assert.equal(doc.image.digest, imageDigestOf(version));
    assert.equal(doc.claims.builder, `${GENERATOR}@refs/tags/${version}`);
    assert.equal(doc.claims.repository, SLSA_REPOSITORY);
    assert.equal(doc.claims.workflow, WORKFLOW);
    assert.match(doc.claims.commit, /^[0-9a-f]{40}$/);
    assert.match(doc.claims.ref, /^refs\/(heads|tags)\//);
    assert.match(doc.claims.buildTime, /^\d{4}-\d\d-\d\dT/);
    assert.match(doc.claims.logIndex, /^\d+$/);
    assert.equal(doc.claims.slsaLevel, 3);
  });

  Deno.test(`attest-provenance oci:DIR refuses every broken ${version} variant with exit 10`, async () => {
    await using tmp = makeTempDir("attest-oci");
    // A layout without the image manifest still verifies: only its digest is needed.
    const bare = await writeVariant(version, join(tmp.path, "bare"), { dropImageManifest: true });
    assertSuccess(await attest(`oci:${bare}`), `oci:${bare}`, version);
    const cases = casesFor(version);
    const results = await pool(cases.map((c, i) => async () => {
      const dir = c.variant === undefined
        ? layoutOf(version)
        : await writeVariant(version, join(tmp.path, `c${i}`), c.variant);
      return await attest(`oci:${dir}`, c.flags ?? [], true);
    }));
    cases.forEach((c, i) => {
      const r = results[i];
      assert.ok(r !== undefined);
      assertFailure(r, c, `oci ${version}`);
    });
  });
}

/** A loopback shim: image manifests from memory, everything else proxied to the real registry. */
function startShim(
  upstream: string,
  images: Map<string, { raw: Uint8Array<ArrayBuffer>; mediaType: string }>,
) {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const url = new URL(req.url);
    const image = images.get(url.pathname);
    if (image !== undefined && (req.method === "GET" || req.method === "HEAD")) {
      await req.body?.cancel();
      const headers = { "Content-Type": image.mediaType, "Content-Length": String(image.raw.byteLength) };
      return new Response(req.method === "HEAD" ? null : new Uint8Array(image.raw), { headers });
    }
    const headers = new Headers(req.headers);
    headers.delete("host");
    const body = req.body === null ? null : new Uint8Array(await req.arrayBuffer());
    const res = await fetch(`${upstream}${url.pathname}${url.search}`, {
      method: req.method,
      headers,
      body,
      redirect: "manual",
    });
    return new Response(res.body, { status: res.status, headers: res.headers });
  });
  return {
    host: `127.0.0.1:${server.addr.port}`,
    close: () => server.shutdown(),
  };
}

/** Pushes a layout's attestation manifest (tag `sha256-<hex>.att`) and registers its image manifest. */
async function pushLayout(
  client: RegistryClient,
  host: string,
  repository: string,
  dir: string,
  images: Map<string, { raw: Uint8Array<ArrayBuffer>; mediaType: string }>,
): Promise<string> {
  const index = JSON.parse(await Deno.readTextFile(`${dir}/index.json`));
  const blob = (d: string) => Deno.readFile(`${dir}/blobs/sha256/${d.slice(7)}`);
  const ref = parseReference(`${host}/${repository}`);
  let imageDigest = "";
  for (const entry of index.manifests) {
    const kind = entry.annotations?.kind ?? "";
    if (kind.startsWith("dev.cosignproject.cosign/image")) {
      imageDigest = entry.digest;
      const raw = await blob(entry.digest);
      for (const id of [entry.digest, "v1"]) {
        images.set(`/v2/${repository}/manifests/${id}`, { raw, mediaType: entry.mediaType });
      }
    }
  }
  await pushLayoutAttestations(client, ref, dir, parseDigest(imageDigest));
  return imageDigest;
}

Deno.test("attest-provenance through a registry: every vector verifies, every broken variant exits 10", async () => {
  await using registry = await startRegistry({ mode: "plain" });
  await using tmp = makeTempDir("attest-registry");
  const images = new Map<string, { raw: Uint8Array<ArrayBuffer>; mediaType: string }>();
  const shim = startShim(registry.url, images);
  try {
    using client = new RegistryClient();
    const jobs: (() => Promise<void>)[] = [];
    for (const version of Object.keys(SLSA_VERSIONS)) {
      const repo = `slsa/${version.replaceAll(".", "-")}`;
      const digest = await pushLayout(client, registry.host, repo, layoutOf(version), images);
      assert.equal(digest, imageDigestOf(version));
      jobs.push(async () => {
        assertSuccess(await attest(`${shim.host}/${repo}:v1`), `${shim.host}/${repo}:v1`, version);
        const byDigest = await attest(`${shim.host}/${repo}@${digest}`);
        assertSuccess(byDigest, `${shim.host}/${repo}`, version);
        assert.match(byDigest.stdout, /given by digest/);
      });
      const cases = casesFor(version);
      for (const [i, c] of cases.entries()) {
        let target = repo;
        if (c.variant !== undefined) {
          target = `${repo}/c${i}`;
          const dir = await writeVariant(version, join(tmp.path, `${version}-${i}`), c.variant);
          await pushLayout(client, registry.host, target, dir, images);
        }
        jobs.push(async () =>
          assertFailure(
            await attest(`${shim.host}/${target}:v1`, c.flags ?? [], true),
            c,
            `registry ${version}`,
          )
        );
      }
    }
    await pool(jobs);
    // An image without any attestation: a verification failure (exit 10), not a crash.
    const bare = readLayout("v2.1.0");
    images.set("/v2/slsa/none/manifests/v1", {
      raw: new Uint8Array(bare.blob(bare.image["digest"])),
      mediaType: String(bare.image["mediaType"]),
    });
    const none = await attest(`${shim.host}/slsa/none:v1`, [], true);
    assert.equal(none.code, 10, none.stderr);
    assert.equal(JSON.parse(none.stdout).error.code, "SIGNATURE_MISSING");
    // An image the registry does not have: a registry failure (exit 12).
    const missing = await attest(`${shim.host}/slsa/missing:v1`, [], true);
    assert.equal(missing.code, 12, missing.stderr);
  } finally {
    await shim.close();
  }
});

Deno.test("attest-provenance oci:DIR judges a cosign-sign bundle referrer beside the provenance alone", async () => {
  await using tmp = makeTempDir("attest-oci-bundle");
  const version = "v2.1.0";
  const digest = imageDigestOf(version);
  /** The layout of `version` plus a referrer of the image holding a cosign v3 *signature* bundle. */
  const withReferrer = async (name: string, keepProvenance: boolean) => {
    const dir = await writeVariant(version, join(tmp.path, name));
    const put = async (bytes: Uint8Array) => {
      const d = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
      await Deno.writeFile(join(dir, "blobs", "sha256", d.slice(7)), bytes);
      return { digest: d, size: bytes.byteLength };
    };
    const signed = signImageBundle({
      digest,
      publisher: createTestKey(),
      log: new TestRekorLog({ key: createTestKey() }),
    });
    const empty = await put(new TextEncoder().encode("{}"));
    const index = JSON.parse(await Deno.readTextFile(join(dir, "index.json")));
    const [image] = index.manifests;
    const manifest = new TextEncoder().encode(JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      artifactType: BUNDLE_V03_MEDIA_TYPE,
      config: { mediaType: "application/vnd.oci.empty.v1+json", ...empty },
      layers: [{ mediaType: BUNDLE_V03_MEDIA_TYPE, ...await put(new TextEncoder().encode(signed.json)) }],
      subject: { mediaType: image.mediaType, digest: image.digest, size: image.size },
    }));
    const referrer = {
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      ...await put(manifest),
      artifactType: BUNDLE_V03_MEDIA_TYPE,
      annotations: { kind: "dev.dangerzone.image/referrer" },
    };
    index.manifests = keepProvenance ? [...index.manifests, referrer] : [image, referrer];
    await Deno.writeTextFile(join(dir, "index.json"), JSON.stringify(index));
    return dir;
  };
  // the signature bundle is a candidate, judged and refused alone: the provenance beside it verifies
  const both = await withReferrer("both", true);
  const r = await attest(`oci:${both}`, ["--debug"]);
  assertSuccess(r, `oci:${both}`, version);
  assert.match(r.stderr, /debug: 2 attestation\(s\) for sha256:/);
  // alone it is no provenance: exit 10, one line
  const alone = await withReferrer("alone", false);
  const refused = await attest(`oci:${alone}`, [], true);
  assert.equal(refused.code, 10, refused.stderr);
  assert.equal(refused.stderr.trimEnd().split("\n").length, 1, refused.stderr);
});
