/**
 * Private: which host a registry's API answers on, and which hosts are loopback.
 *
 * @module
 */
import { normalizeRegistry } from "../oci/reference.ts";

/** The host the distribution API of `registry` answers on (`docker.io` -> `registry-1.docker.io`). */
export function apiHost(registry: string): string {
  return normalizeRegistry(registry) === "docker.io" ? "registry-1.docker.io" : registry;
}

/** True for `localhost`, 127.0.0.0/8 and ::1, with or without a port. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/:\d+$/, "");
  return h === "localhost" || h === "[::1]" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}
