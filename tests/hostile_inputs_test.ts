/**
 * No input may end in "internal error" (issue 14 item 5): every command is run against hostile inputs
 * and must fail with the exit code of its class (2 usage or damaged data dir, 10 verification, 11
 * rollback, 12 registry, 13 archive, 14 runtime), never 1, and never print "internal error":
 *
 * - malformed JSON at every limit of `src/strict_json.ts` (depth 32 at the edge and one past it, in
 *   arrays and objects, at the top and inside an element; duplicate keys; lone surrogates; trailing
 *   data; a byte order mark; invalid UTF-8; raw control characters; numbers out of range; over the
 *   size limit) in each JSON input: signature lists, Sigstore bundles, trusted roots, registry manifests
 *   (the image's and its `.sig`), archive indexes, and the stored anti-rollback state;
 * - the fault server's modes for registry answers (dropped and endless bodies, error statuses with
 *   escape sequences, redirect loops);
 * - archives that are not tars or whose indexes are malformed.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { type CliResult, runCli } from "./_helpers/cli.ts";
import {
  blobResponse,
  errorResponse,
  manifestResponse,
  redirectResponse,
  startFaultServer,
} from "./_helpers/fault_server.ts";
import { startPodman } from "./_helpers/podman.ts";
import { makeTempDir } from "./_helpers/process.ts";
import { startSignedRegistry } from "./update/_fixture.ts";

const enc = new TextEncoder();
const ASSETS = new URL("./testdata/vectors/dangerzone/tests/assets/", import.meta.url).pathname;
const KEY = join(ASSETS, "test.pub.key");
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const ZERO_DIGEST = `sha256:${"0".repeat(64)}`;

const arrays = (n: number) => "[".repeat(n) + "]".repeat(n);
const objects = (n: number) => '{"a":'.repeat(n) + "1" + "}".repeat(n);

/** Malformed (or barely well-formed) JSON at every limit of the strict parser. */
function malformedJson(): [string, Uint8Array][] {
  const text: [string, string][] = [
    ["33 nested arrays (the depth limit)", arrays(33)],
    ["34 nested arrays (one past it)", arrays(34)],
    ["33 nested objects", objects(33)],
    ["34 nested objects", objects(34)],
    ["a list whose element nests 32 deep", `[${objects(32)}]`],
    ["a list whose element nests 33 deep", `[${objects(33)}]`],
    ["duplicate keys", '{"a":1,"a":2}'],
    ["duplicate keys in an element", '[{"Payload":"eA==","Payload":"eA=="}]'],
    ["a lone surrogate key", '{"\\ud800":1}'],
    ["trailing data", "[] x"],
    ["a number out of range", "[1e999]"],
    ["a raw control character in a string", '["a\u0001b"]'],
    ["an unterminated string", '["abc'],
    ["empty", ""],
    ["not JSON", "\u001b]0;pwned\u0007"],
  ];
  return [
    ...text.map(([n, t]): [string, Uint8Array] => [n, enc.encode(t)]),
    ["a byte order mark", new Uint8Array([0xef, 0xbb, 0xbf, 0x5b, 0x5d])],
    ["invalid UTF-8", new Uint8Array([0x5b, 0x22, 0xff, 0xfe, 0x22, 0x5d])],
  ];
}

/** A signature list whose one entry carries `bundle` as its Bundle. */
function signatureListWith(bundle: string): Uint8Array {
  return enc.encode(
    `[{"Base64Signature":"eA==","Payload":"eA==","Cert":null,"Chain":null,"Bundle":${bundle},` +
      `"RFC3161Timestamp":null}]`,
  );
}

const ALLOWED = new Set([2, 10, 11, 12, 13, 14]);

function assertClean(label: string, r: CliResult, allowed: ReadonlySet<number> = ALLOWED): void {
  assert.ok(allowed.has(r.code), `${label}: exit ${r.code} (allowed ${[...allowed].join("/")}): ${r.stderr}`);
  assert.doesNotMatch(r.stderr + r.stdout, /internal error/i, `${label}: ${r.stderr}`);
  assert.equal(r.stderr.trim().split("\n").length, 1, `${label}: not one line: ${r.stderr}`);
}

/** Runs the CLI for each job, two at a time (the machine is shared). */
async function runAll(jobs: [string, string[], ReadonlySet<number>?][], env: Record<string, string> = {}) {
  const queue = [...jobs];
  const worker = async () => {
    for (let job = queue.shift(); job !== undefined; job = queue.shift()) {
      const [label, args, allowed] = job;
      assertClean(label, await runCli(args, { env }), allowed);
    }
  };
  await Promise.all([worker(), worker()]);
}

Deno.test("hostile JSON in signature lists, bundles and trusted roots: exit 2 or 10, never 'internal error'", async () => {
  await using tmp = makeTempDir("hostile-json");
  const artifact = join(tmp.path, "a.txt");
  await Deno.writeTextFile(artifact, "artifact\n");
  const jobs: [string, string[]][] = [];
  let n = 0;
  const file = async (bytes: Uint8Array) => {
    const path = join(tmp.path, `input-${n++}.json`);
    await Deno.writeFile(path, bytes);
    return path;
  };
  const cases: [string, Uint8Array][] = [
    ...malformedJson(),
    ["a Bundle nesting 31 deep inside its entry", signatureListWith(arrays(31))],
    ["a Bundle nesting 32 deep inside its entry", signatureListWith(arrays(32))],
    ["a Bundle nesting 33 deep inside its entry", signatureListWith(arrays(33))],
  ];
  for (const [name, bytes] of cases) {
    const f = await file(bytes);
    jobs.push([`verify-signatures: ${name}`, [
      "verify-signatures",
      "--signatures",
      f,
      "--digest",
      ZERO_DIGEST,
    ]]);
    jobs.push([`verify-bundle --bundle: ${name}`, ["verify-bundle", "--bundle", f, "--key", KEY, artifact]]);
    jobs.push([
      `verify-bundle --trusted-root: ${name}`,
      [
        "verify-bundle",
        "--bundle",
        f,
        "--trusted-root",
        f,
        "--certificate-identity",
        "x",
        "--certificate-oidc-issuer",
        "y",
        artifact,
      ],
    ]);
  }
  // Over each input's size limit (signature list 32 MiB, bundle 8 MiB, trusted root 1 MiB).
  const big = await file(enc.encode(`[${" ".repeat(32 * 1024 * 1024)}]`));
  jobs.push(["verify-signatures: over the size limit", [
    "verify-signatures",
    "--signatures",
    big,
    "--digest",
    ZERO_DIGEST,
  ]]);
  jobs.push(["verify-bundle: over the size limit", [
    "verify-bundle",
    "--bundle",
    big,
    "--key",
    KEY,
    artifact,
  ]]);
  jobs.push(["check --trusted-root: over the size limit", [
    "check",
    "--trusted-root",
    big,
    "--image",
    "127.0.0.1:9/x/y",
  ]]);
  await runAll(jobs);
});

Deno.test("hostile registry answers and manifests: every registry command exits 10 or 12, never 'internal error'", async () => {
  const image = enc.encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: ZERO_DIGEST, size: 2 },
    layers: [],
  }));
  const imageDigest = `sha256:${createHash("sha256").update(image).digest("hex")}`;
  const sigTag = `sha256-${imageDigest.slice(7)}.sig`;
  const bodies = new Map(malformedJson().map(([name, bytes]) => [name.replaceAll(" ", "-"), bytes]));
  await using s = startFaultServer([
    { path: /\/referrers\//, handler: () => errorResponse(404, "NOT_FOUND") },
    {
      path: /\/manifests\/(.+)$/,
      handler: (req, ctx) => {
        const tag = decodeURIComponent(ctx.url.pathname.split("/").pop() ?? "");
        const repo = ctx.url.pathname.split("/")[3] ?? "";
        if (repo === "badsig") {
          // A valid image whose `.sig` manifest is malformed (each signature judged alone: exit 10).
          if (tag === sigTag) {
            return manifestResponse(
              new Uint8Array(
                enc.encode(`{"schemaVersion":2,"mediaType":"${OCI_MANIFEST}","layers":${arrays(40)}}`),
              ),
              OCI_MANIFEST,
            );
          }
          if (tag.startsWith("sha256-")) return errorResponse(404, "MANIFEST_UNKNOWN");
          return manifestResponse(new Uint8Array(image), OCI_MANIFEST);
        }
        const body = bodies.get(tag);
        if (body !== undefined) return manifestResponse(new Uint8Array(body), OCI_MANIFEST);
        switch (tag) {
          case "drop":
            return blobResponse(req, new Uint8Array(image), { kind: "drop", after: 10 });
          case "endless":
            return blobResponse(req, new Uint8Array(image), { kind: "endless" });
          case "denied":
            return new Response(
              JSON.stringify({ errors: [{ code: "DENIED", message: "\u001b[2J\u001b]0;x\u0007" }] }),
              { status: 403 },
            );
          case "gone":
            return errorResponse(404, "MANIFEST_UNKNOWN");
          case "teapot":
            return new Response("\u001b[2Jno", { status: 418 });
          case "loop":
            return redirectResponse(`${ctx.origin}${ctx.url.pathname}`);
          default:
            return errorResponse(404, "NAME_UNKNOWN");
        }
      },
    },
  ]);
  await using tmp = makeTempDir("hostile-registry");
  const jobs: [string, string[]][] = [];
  const tags = [...bodies.keys(), "drop", "endless", "denied", "gone", "teapot", "loop"];
  // Every registry command meets every fault mode; the malformed bodies are spread over the commands
  // (they all read the manifest through the same client), to keep the run short on a shared machine.
  const commands = ["check", "store-signatures", "upgrade", "prepare-archive"];
  for (const [i, tag] of tags.entries()) {
    const faultMode = i >= bodies.size;
    for (const command of faultMode ? commands : [commands[i % commands.length] ?? "check"]) {
      const extra = command === "prepare-archive"
        ? ["--arch", "amd64", "--output", join(tmp.path, "out.tar")]
        : [];
      jobs.push([
        `${command} ${tag}`,
        [
          command,
          "--image",
          `${s.host}/app/x:${tag}`,
          "--data-dir",
          join(tmp.path, "d"),
          "--runtime",
          "podman",
          ...extra,
        ],
      ]);
    }
  }
  for (const command of ["check", "store-signatures"]) {
    jobs.push([`${command} with a malformed .sig manifest`, [
      command,
      "--image",
      `${s.host}/badsig/x:latest`,
      "--data-dir",
      join(tmp.path, "d"),
    ]]);
  }
  await runAll(jobs);
});

Deno.test("hostile stored state and archives: exit 2 or 13, never 'internal error'", async () => {
  await using sr = await startSignedRegistry("plain");
  await using tmp = makeTempDir("hostile-state");
  const img = await sr.pushBusybox("sandbox/state", "latest", "state");
  await sr.sign(img.digest, { repository: "sandbox/state", logIndex: 3 });
  const image = `${sr.reg.host}/sandbox/state:latest`;
  const jobs: [string, string[]][] = [];
  let n = 0;
  const states: [string, string, Uint8Array][] = [
    ...malformedJson().map(([name, bytes]): [string, string, Uint8Array] => [name, "log_state.json", bytes]),
    [
      "a version-1 state with a 33-deep log entry",
      "log_state.json",
      enc.encode(`{"version":1,"logs":{"${"a".repeat(64)}":${objects(33)}}}`),
    ],
    ["over 1 MiB", "log_state.json", enc.encode(`{"version":1,"logs":{}}${" ".repeat(1024 * 1024)}`)],
    ["a negative index", "last_log_index", enc.encode("-1")],
    ["not decimal", "last_log_index", enc.encode("1e3\n")],
    ["over the safe integer range", "last_log_index", enc.encode("99999999999999999")],
    ["huge", "last_log_index", enc.encode("9".repeat(4096))],
  ];
  for (const [name, fileName, bytes] of states) {
    const dataDir = join(tmp.path, `state-${n++}`);
    await Deno.mkdir(join(dataDir, "signatures"), { recursive: true });
    await Deno.writeFile(join(dataDir, "signatures", fileName), bytes);
    const command = n % 2 === 0 ? "check" : "store-signatures"; // both read the state the same way
    jobs.push([`${command} with ${fileName}: ${name}`, [command, ...sr.cliArgs(image, dataDir)]]);
  }
  // Archives: not a tar, empty, and tars whose index.json / dangerzone.json are malformed.
  const tar = async (files: Record<string, Uint8Array>) => {
    const dir = join(tmp.path, `tar-${n++}`);
    await Deno.mkdir(dir);
    for (const [name, bytes] of Object.entries(files)) await Deno.writeFile(join(dir, name), bytes);
    const out = `${dir}.tar`;
    const r = await new Deno.Command("tar", {
      args: ["-cf", out, "-C", dir, ...Object.keys(files).map((f) => `./${f}`)],
    }).output();
    assert.equal(r.code, 0);
    return out;
  };
  const layout = enc.encode('{"imageLayoutVersion":"1.0.0"}');
  const archives: [string, string][] = [];
  const junk = join(tmp.path, "junk.tar");
  await Deno.writeFile(junk, enc.encode("\u001b[2J not a tar at all ".repeat(100)));
  archives.push(["not a tar", junk]);
  const empty = join(tmp.path, "empty.tar");
  await Deno.writeFile(empty, new Uint8Array());
  archives.push(["empty", empty]);
  for (const [name, bytes] of malformedJson()) {
    archives.push([
      `index.json: ${name}`,
      await tar({ "oci-layout": layout, "index.json": bytes, "dangerzone.json": bytes }),
    ]);
  }
  for (const [name, path] of archives) {
    jobs.push([`load-archive ${name}`, [
      "load-archive",
      path,
      "--data-dir",
      join(tmp.path, `archive-data-${n++}`),
      "--runtime",
      "podman",
    ]]);
  }
  await runAll(jobs, sr.env);
});

Deno.test("hostile stored signature lists and bundle lists: verify-local exits 2 or 10, never 'internal error'", async () => {
  await using sr = await startSignedRegistry("plain");
  await using pm = await startPodman();
  await using tmp = makeTempDir("hostile-store");
  const img = await sr.pushBusybox("sandbox/store", "latest", "store");
  const image = `${sr.reg.host}/sandbox/store:latest`;
  await pm.podman(["pull", "-q", "--tls-verify=false", image]);
  const keyDir = createHash("sha256").update(await Deno.readFile(sr.pubkeyFile)).digest("hex");
  const jobs: [string, string[]][] = [];
  let n = 0;
  const lists: [string, Uint8Array][] = [
    ...malformedJson(),
    ["a Bundle nesting 33 deep inside its entry", signatureListWith(arrays(33))],
  ];
  for (const [name, bytes] of lists) {
    for (const file of [`${img.digest.slice(7)}.json`, `${img.digest.slice(7)}.bundles.json`]) {
      const dataDir = join(tmp.path, `store-${n++}`);
      await Deno.mkdir(join(dataDir, "signatures", keyDir), { recursive: true });
      await Deno.writeFile(join(dataDir, "signatures", keyDir, file), bytes);
      jobs.push([`verify-local with ${file.slice(64)}: ${name}`, [
        "verify-local",
        ...sr.cliArgs(image, dataDir),
        "--runtime",
        "podman",
      ]]);
    }
  }
  await runAll(jobs, { ...pm.env, ...sr.env });
});
