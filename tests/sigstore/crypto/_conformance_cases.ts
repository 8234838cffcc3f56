/**
 * Test fixtures: the sigstore-conformance bundle-verify cases of tests/testdata/vectors/, read-only, with
 * the protocol's defaults (artifact ../a.txt, the beacon identity, the Actions issuer, production root).
 *
 * @module
 */
import { fileURLToPath } from "node:url";

/** The vectors folder. */
export const VECTORS = fileURLToPath(new URL("../../testdata/vectors/", import.meta.url));
/** The bundle-verify cases folder. */
export const CASES_DIR = `${VECTORS}sigstore-conformance/test/assets/bundle-verify/`;
/** The production trusted root file. */
export const PRODUCTION_ROOT_FILE = `${VECTORS}sigstore-root-signing/targets/trusted_root.json`;
/** The default identity of the protocol. */
export const BEACON_IDENTITY =
  "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
/** The default issuer of the protocol. */
export const ACTIONS_ISSUER = "https://token.actions.githubusercontent.com";

/** One case, resolved. */
export interface ConformanceCase {
  name: string;
  expectPass: boolean;
  bundleFile: string;
  artifactFile: string;
  keyFile: string | undefined;
  identity: string;
  issuer: string;
  trustedRootFile: string | undefined;
}

function exists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** Every case folder, sorted. */
export function conformanceCases(): ConformanceCase[] {
  return [...Deno.readDirSync(CASES_DIR)].filter((e) => e.isDirectory).map((e) => e.name).sort().map(
    (name) => {
      const dir = `${CASES_DIR}${name}/`;
      const read = (f: string) => exists(dir + f) ? Deno.readTextFileSync(dir + f).trim() : undefined;
      return {
        name,
        expectPass: !name.endsWith("_fail"),
        bundleFile: `${dir}bundle.sigstore.json`,
        artifactFile: exists(`${dir}artifact`) ? `${dir}artifact` : `${CASES_DIR}../a.txt`,
        keyFile: exists(`${dir}key.pub`) ? `${dir}key.pub` : undefined,
        identity: read("identity") ?? BEACON_IDENTITY,
        issuer: read("issuer") ?? ACTIONS_ISSUER,
        trustedRootFile: exists(`${dir}trusted_root.json`) ? `${dir}trusted_root.json` : undefined,
      };
    },
  );
}

/** A case's bundle as a mutable JSON value (for crafting negatives). */
export function bundleJson(name: string): Record<string, unknown> {
  const value: unknown = JSON.parse(Deno.readTextFileSync(`${CASES_DIR}${name}/bundle.sigstore.json`));
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error("not an object");
  return { ...value };
}

/** The protocol's default artifact bytes. */
export function defaultArtifact(): Uint8Array {
  return Deno.readFileSync(`${CASES_DIR}../a.txt`);
}
