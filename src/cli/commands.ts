/**
 * The commands of DESIGN.md, as data ({@linkcode CommandSpec}): `program.ts` builds commander's tree
 * from them, and `fast_args.ts` reads the plain invocations of the `fast` ones without it.
 *
 * @module
 */
import type { CommandSpec } from "./spec.ts";

/** Every command but `completion` (which is generated from the tree these build). */
export const COMMANDS: readonly CommandSpec[] = [
  {
    name: "upgrade",
    summary: "Resolve, verify and install the newest signed image (anti-rollback; exit 0 when up to date).",
    example: "dangerzone-image upgrade --json",
    options: [
      { flags: "--prune", description: "remove older images of the same name after a successful upgrade" },
      {
        flags: "--max-age <days>",
        description: "warn when the newest signature is older than this",
        defaultValue: "30",
      },
    ],
    load: async (a, o, out) => (await import("./upgrade.ts")).upgradeCommand(a, o, out),
  },
  {
    name: "check",
    summary: "Is a newer verified image available? Exit 0 up to date, 3 update available.",
    example: "dangerzone-image check --json",
    load: async (a, o, out) => (await import("./check.ts")).checkCommand(a, o, out),
  },
  {
    name: "store-signatures",
    summary: "Fetch, verify and store the remote signatures without installing anything.",
    example: "dangerzone-image store-signatures --image ghcr.io/freedomofpress/dangerzone/v1:latest",
    load: async (a, o, out) => (await import("./store_signatures.ts")).storeSignaturesCommand(a, o, out),
  },
  {
    name: "verify-local",
    summary: "Check that the image the runtime holds has stored signatures that verify with the trusted key.",
    example: "dangerzone-image verify-local ghcr.io/freedomofpress/dangerzone/v1",
    arguments: [{ name: "[image]", description: "image name or ID held by the runtime" }],
    // runs before every document conversion: no commander at start-up
    fast: true,
    load: async (a, o, out) => (await import("./verify_local.ts")).verifyLocalCommand(a, o, out),
  },
  {
    name: "attest-provenance",
    summary: "Verify the keyless SLSA provenance attestation of an image and print the verified claims.",
    example:
      "dangerzone-image attest-provenance ghcr.io/freedomofpress/dangerzone/v1 --repository freedomofpress/dangerzone",
    arguments: [{ name: "<image>", description: "registry reference, or oci:DIR for a cosign save layout" }],
    options: [
      {
        flags: "--repository <owner/repo>",
        description: "the GitHub repository the image must be built from",
        required: true,
      },
      { flags: "--builder <id>", description: "another trusted builder workflow identity" },
      { flags: "--workflow <path>", description: "expected workflow path (configSource.entryPoint)" },
      { flags: "--branch <name>", description: "expected source branch" },
      { flags: "--tag <name>", description: "expected source tag" },
    ],
    load: async (a, o, out) => (await import("./attest_provenance.ts")).runAttestProvenance(a, o, out),
  },
  {
    name: "prepare-archive",
    summary:
      "Write an air-gapped archive: the image for one platform, its signatures and what verifies them.",
    example: "dangerzone-image prepare-archive --arch amd64 --output dangerzone-amd64.tar",
    options: [
      { flags: "--arch <arch>", description: "architecture to archive, e.g. amd64 or arm64" },
      { flags: "--platform <os/arch[/variant]>", description: "platform to archive" },
      { flags: "--output <file>", description: "archive path (default: dangerzone-{arch}.tar)" },
    ],
    load: async (a, o, out) => (await import("./prepare_archive.ts")).prepareArchiveCommand(a, o, out),
  },
  {
    name: "load-archive",
    summary: "Verify an air-gapped archive completely, then load it into the container runtime.",
    example: "dangerzone-image load-archive dangerzone-amd64.tar",
    arguments: [{
      name: "<file>",
      description: "archive made by prepare-archive (or a cosign save layout directory)",
    }],
    options: [
      { flags: "--force", description: "bypass only the rollback check (asks for confirmation on a TTY)" },
      {
        flags: "--platform <os/arch[/variant]>",
        description: "platform to load when the archive holds an index",
      },
    ],
    load: async (a, o, out) => (await import("./load_archive.ts")).loadArchiveCommand(a, o, out),
  },
  {
    name: "verify-bundle",
    summary: "Verify a Sigstore bundle (sigstore-conformance client protocol).",
    example: "dangerzone-image verify-bundle --bundle a.sigstore.json --certificate-identity ID " +
      "--certificate-oidc-issuer https://token.actions.githubusercontent.com a.txt",
    arguments: [{ name: "<artifact>", description: "the artifact file, or sha256:DIGEST" }],
    options: [
      { flags: "--bundle <file>", description: "the Sigstore bundle (JSON)", required: true },
      { flags: "--key <file>", description: "verify with this public key instead of a certificate identity" },
      {
        flags: "--certificate-identity <id>",
        description: "expected certificate identity (SAN), compared exactly",
      },
      { flags: "--certificate-oidc-issuer <url>", description: "expected OIDC issuer, compared exactly" },
    ],
    load: async (a, o, out) => (await import("./verify_bundle.ts")).runVerifyBundle(a, o, out),
  },
  {
    name: "verify-signatures",
    summary: "Verify a stored signature file (cosign download signature JSON list) offline.",
    example:
      "dangerzone-image verify-signatures --signatures sigs.json --digest sha256:<hex> --reference ghcr.io/freedomofpress/dangerzone/v1",
    options: [
      {
        flags: "--signatures <file>",
        description: "JSON list of signatures in cosign download signature form",
        required: true,
      },
      {
        flags: "--digest <sha256:hex>",
        description: "the image manifest digest the signatures must cover",
        required: true,
      },
      {
        flags: "--reference <repo>",
        description: "enforce this signed docker-reference (otherwise only reported)",
      },
    ],
    load: async (a, o, out) => (await import("./verify_signatures.ts")).verifySignaturesCommand(a, o, out),
  },
  {
    name: "mirror",
    summary:
      "Verify an image, then copy it and every signature form into another registry (the tag moves last).",
    example: "dangerzone-image mirror --to registry.example/mirror/dangerzone/v1",
    options: [
      {
        flags: "--to <registry/repo[:tag]>",
        description: "destination repository (tag: the source's)",
        required: true,
      },
      {
        flags: "--arch <arch>",
        description: "copy only this architecture of an index (repeatable)",
        repeatable: true,
      },
      {
        flags: "--archive <file>",
        description: "mirror an air-gapped archive (verified as load-archive does) instead of --image",
      },
      { flags: "--force", description: "bypass only the destination's rollback check" },
    ],
    load: async (a, o, out) => (await import("./mirror.ts")).mirrorCommand(a, o, out),
  },
  {
    name: "trust-root",
    summary:
      "Sigstore trust material through TUF: update (verify and store trusted_root.json), show, export-rekor-key.",
    example:
      "dangerzone-image trust-root update && dangerzone-image trust-root export-rekor-key --output rekor.pub",
    arguments: [{
      name: "<action>",
      description: "what to do",
      choices: ["update", "show", "export-rekor-key"],
    }],
    options: [
      {
        flags: "--tuf-url <url>",
        description: "update: TUF repository (default https://tuf-repo-cdn.sigstore.dev)",
      },
      {
        flags: "--tuf-root <file>",
        description: "update: initial trusted TUF root.json (default: data dir cache, else embedded)",
      },
      { flags: "--output <file>", description: "export-rekor-key: write the PEM here instead of stdout" },
      { flags: "--log-id <hex>", description: "export-rekor-key: the transparency log with this log ID" },
      { flags: "--all", description: "export-rekor-key: every transparency log's key" },
    ],
    load: async (a, o, out) => (await import("./trust_root.ts")).trustRootCommand(a, o, out),
  },
];
