/**
 * Shared helpers of the mirror tests: what a tag resolves to, and a registry client (or CLI environment)
 * holding one destination registry's credentials in an auth file, as users configure them.
 *
 * @module
 */
import { join } from "node:path";
import { isDangerzoneError } from "../../src/errors.ts";
import type { Digest } from "../../src/oci/digest.ts";
import { parseReference } from "../../src/oci/reference.ts";
import { RegistryClient, type RegistryClientOptions } from "../../src/registry/client.ts";
import { createCredentialResolver } from "../../src/registry/credentials.ts";
import type { RunningRegistry } from "../_helpers/registry.ts";

/** The digest `ref` (`host/repo:tag`) resolves to, or null when the tag does not exist. */
export async function tagDigest(ref: string, options: RegistryClientOptions = {}): Promise<Digest | null> {
  using client = new RegistryClient(options);
  try {
    return (await client.getManifest(parseReference(ref))).descriptor.digest;
  } catch (err) {
    if (isDangerzoneError(err, "REGISTRY_NOT_FOUND")) return null;
    throw err;
  }
}

/** Credentials of a destination, written to `<dir>/auth.json` (`auth` overrides the registry's own). */
export interface DestinationCredentials {
  /** `{ REGISTRY_AUTH_FILE }` for a CLI run. */
  env: Record<string, string>;
  /** A registry client (one attempt per request) reading that file; the caller closes it. */
  client(): RegistryClient;
}

/** Writes an auth file for `dest` (its user and password, or `auth` as given) under `dir`. */
export async function destinationCredentials(
  dir: string,
  dest: RunningRegistry,
  auth?: string,
): Promise<DestinationCredentials> {
  const path = join(dir, "auth.json");
  const value = auth ?? (dest.username === undefined ? undefined : `${dest.username}:${dest.password}`);
  const auths = value === undefined ? {} : { [dest.host]: { auth: btoa(value) } };
  await Deno.writeTextFile(path, JSON.stringify({ auths }));
  const env = { REGISTRY_AUTH_FILE: path };
  return {
    env,
    client: () =>
      new RegistryClient({ retry: { attempts: 1 }, credentials: createCredentialResolver({ env }) }),
  };
}
