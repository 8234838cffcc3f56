/**
 * Free loopback ports for the services the test harness starts.
 *
 * @module
 */

/**
 * Returns a TCP port on 127.0.0.1 that was free a moment ago.
 *
 * The port is found by binding port 0 and closing the listener, so another process may take it before the
 * caller binds it; starters retry on "address already in use" (see `startRegistry`).
 *
 * @example
 * ```ts
 * import { freePort } from "./ports.ts";
 * const port = freePort();
 * ```
 */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    return listener.addr.port;
  } finally {
    listener.close();
  }
}
