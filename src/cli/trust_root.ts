/**
 * `trust-root update|show|export-rekor-key`: Sigstore's trusted root through TUF, what is in use, and
 * the Rekor public key the seed's `cosign initialize` + `jq` + `base64` + `openssl` recipe extracts.
 *
 * @module
 */
import { DangerzoneError, type ExitCodeValue } from "../errors.ts";
import { readFileBounded } from "../read_bounded.ts";
import { resolveDataDir } from "../store/data_dir.ts";
import { writeFileAtomic } from "../store/_atomic_write.ts";
import { rekorKeyPems, type RekorKeySelection } from "../tuf/rekor_key_pem.ts";
import { type TrustRootStatus, trustRootStatus } from "../tuf/show.ts";
import { trustedRootFrom } from "./_context.ts";
import type { CommonOptions } from "./common.ts";
import type { Output } from "./output.ts";

/** The options of `trust-root`, as commander parses them. */
export interface TrustRootCliOptions extends CommonOptions {
  tufUrl?: string;
  tufRoot?: string;
  output?: string;
  logId?: string;
  all?: boolean;
}

/** The actions of `trust-root` and the options each one takes. */
const ACTION_OPTIONS = {
  update: ["tufUrl", "tufRoot"],
  show: [],
  "export-rekor-key": ["output", "logId", "all"],
} as const satisfies Record<string, readonly (keyof TrustRootCliOptions)[]>;
type Action = keyof typeof ACTION_OPTIONS;
const OWN_OPTIONS = ["tufUrl", "tufRoot", "output", "logId", "all"] as const;

/**
 * Runs `trust-root ACTION`.
 *
 * @example
 * ```ts ignore
 * await trustRootCommand(["show"], { json: true }, new Output({ json: true }));
 * ```
 */
export async function trustRootCommand(
  args: string[],
  options: TrustRootCliOptions & Record<string, unknown>,
  out: Output,
): Promise<ExitCodeValue> {
  const action = args[0];
  if (action === undefined || !Object.hasOwn(ACTION_OPTIONS, action)) {
    throw new DangerzoneError("USAGE", `unknown trust-root action '${action ?? ""}'`, {
      hint: "use trust-root update, trust-root show or trust-root export-rekor-key",
    });
  }
  const allowed: readonly string[] = ACTION_OPTIONS[action as Action];
  const stray = OWN_OPTIONS.find((o) => options[o] !== undefined && !allowed.includes(o));
  if (stray !== undefined) {
    const flag = `--${stray.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
    throw new DangerzoneError("USAGE", `${flag} does not apply to trust-root ${action}`);
  }
  const dataDir = resolveDataDir({ dataDir: options.dataDir });
  switch (action as Action) {
    case "update":
      return await update(dataDir, options, out);
    case "show":
      return show(await trustRootStatus(dataDir, { trustedRootFile: options.trustedRoot }), out);
    case "export-rekor-key":
      return await exportRekorKey(options, out);
  }
}

async function update(dataDir: string, options: TrustRootCliOptions, out: Output): Promise<ExitCodeValue> {
  const caCerts: string[] = [];
  for (const file of options.caCert ?? []) {
    const pem = await readFileBounded(file, {
      limit: 1024 * 1024,
      tooLargeCode: "CONFIG_INVALID",
      what: "CA file",
    });
    caCerts.push(new TextDecoder().decode(pem));
  }
  // loaded only for update: `show` and `export-rekor-key` never load the TUF client
  const { updateTrustRoot } = await import("../tuf/update.ts");
  const result = await updateTrustRoot(dataDir, {
    tufUrl: options.tufUrl,
    tufRootFile: options.tufRoot,
    network: { proxy: options.proxy, caCerts },
    onLog: (line) => out.debugLine(line),
  });
  const walk = result.previousTufRootVersion === result.tufRoot.version
    ? `TUF root v${result.tufRoot.version}`
    : `TUF root v${result.previousTufRootVersion} -> v${result.tufRoot.version}`;
  out.line(
    `${
      result.changed ? "updated" : "up to date"
    }: ${result.trustedRootPath} (sha256 ${result.trustedRootSha256}), ` +
      `verified through ${result.tufUrl} (${walk}, expires ${result.tufRoot.expires})`,
  );
  out.result({
    schemaVersion: 1,
    ok: true,
    tufUrl: result.tufUrl,
    startedFrom: result.startedFrom,
    previousTufRootVersion: result.previousTufRootVersion,
    tufRoot: { version: result.tufRoot.version, expires: result.tufRoot.expires },
    trustedRoot: { path: result.trustedRootPath, sha256: result.trustedRootSha256, changed: result.changed },
  });
  return 0;
}

function show(status: TrustRootStatus, out: Output): ExitCodeValue {
  const t = status.tufRoot;
  out.line(
    `TUF root: v${t.version} (${t.source}${t.path === null ? "" : ` ${t.path}`}) of ${t.repository}, ` +
      `expires ${t.expires}${t.expired ? " (expired: the next update walks forward online)" : ""}`,
  );
  const r = status.trustedRoot;
  const origin = r.origin === null ? "" : `, from ${r.origin.tufUrl} at ${r.origin.updatedAt}`;
  out.line(`trusted root: ${r.source}${r.path === null ? "" : ` ${r.path}`} (sha256 ${r.sha256}${origin})`);
  const window = (from: unknown, until: unknown) =>
    `${String(from)} -> ${until === null ? "open" : String(until)}`;
  out.line("transparency logs:");
  for (const l of status.tlogs) {
    out.line(`  ${l["baseUrl"]} ${l["logId"]} ${window(l["validFrom"], l["validUntil"])}`);
  }
  out.line("CT logs:");
  for (const l of status.ctlogs) {
    out.line(`  ${l["baseUrl"]} ${l["logId"]} ${window(l["validFrom"], l["validUntil"])}`);
  }
  out.line("certificate authorities:");
  for (const a of status.certificateAuthorities) {
    out.line(`  ${a.uri} (${a.subject}) ${window(a.validFrom, a.validUntil)}`);
  }
  out.line("timestamp authorities:");
  for (const a of status.timestampAuthorities) {
    out.line(`  ${a.uri} (${a.subject}) ${window(a.validFrom, a.validUntil)}`);
  }
  out.result(status);
  return 0;
}

async function exportRekorKey(options: TrustRootCliOptions, out: Output): Promise<ExitCodeValue> {
  if (options.all === true && options.logId !== undefined) {
    throw new DangerzoneError("USAGE", "give either --log-id ID or --all, not both");
  }
  const selection: RekorKeySelection = options.all === true
    ? { kind: "all" }
    : options.logId !== undefined
    ? { kind: "log-id", logId: options.logId }
    : { kind: "first" };
  const root = await trustedRootFrom(options);
  const keys = rekorKeyPems(root, selection);
  const pem = keys.map((k) => k.pem).join("");
  if (options.output !== undefined) {
    await writeFileAtomic(options.output, new TextEncoder().encode(pem));
    out.line(`wrote ${keys.length} Rekor key(s) from ${root.source} to ${options.output}`);
  } else if (!out.json) {
    const bytes = new TextEncoder().encode(pem);
    for (let written = 0; written < bytes.length;) {
      written += await Deno.stdout.write(bytes.subarray(written));
    }
  }
  out.result({ schemaVersion: 1, ok: true, trustedRoot: root.source, output: options.output ?? null, keys });
  return 0;
}
