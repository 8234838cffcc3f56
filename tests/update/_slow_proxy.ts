/**
 * A throttling reverse proxy in front of the real registry (a fault server route that forwards every
 * request): blob bodies are paced at `bytesPerSecond`, so a test can kill a download midway.
 *
 * @module
 */
import { type FaultServer, startFaultServer } from "../_helpers/fault_server.ts";
import type { RunningRegistry } from "../_helpers/registry.ts";

/** Starts the proxy; its `host` is usable as a registry host (plain HTTP on loopback). */
export function startSlowProxy(reg: RunningRegistry, bytesPerSecond: number): FaultServer {
  return startFaultServer([{
    path: /^\/v2\//,
    handler: async (req, ctx) => {
      const headers = new Headers(req.headers);
      headers.delete("host");
      const upstream = await reg.fetch(`${ctx.url.pathname}${ctx.url.search}`, {
        method: req.method,
        headers,
        ...(req.body === null ? {} : { body: await req.arrayBuffer() }),
        redirect: "manual",
      });
      const slow = req.method === "GET" && ctx.url.pathname.includes("/blobs/") && upstream.body !== null;
      const body = slow && upstream.body !== null
        ? upstream.body.pipeThrough(pace(bytesPerSecond))
        : upstream.body;
      return new Response(body, { status: upstream.status, headers: upstream.headers });
    },
  }]);
}

function pace(bytesPerSecond: number): TransformStream<Uint8Array, Uint8Array> {
  const slice = 64 * 1024;
  const delayMs = (slice / bytesPerSecond) * 1000;
  return new TransformStream({
    async transform(chunk, controller) {
      for (let off = 0; off < chunk.byteLength; off += slice) {
        controller.enqueue(chunk.subarray(off, Math.min(off + slice, chunk.byteLength)));
        await new Promise((r) => setTimeout(r, delayMs));
      }
    },
  });
}
