/**
 * Shared setup of the parallel Range tests: a large single-layer image on the real registry, the fault
 * server forwarding to it with a chosen Range fault, a client that uses ranges for any blob, and readers
 * of what was asked for and what arrived.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import type { Descriptor } from "../../src/oci/descriptor.ts";
import { digestHex } from "../../src/oci/digest.ts";
import { RegistryClient, type RegistryClientOptions } from "../../src/registry/client.ts";
import {
  type FaultServer,
  forwardRange,
  type RangeFault,
  startFaultServer,
} from "../_helpers/fault_server.ts";
import { buildLargeImage, pushImage } from "../_helpers/images.ts";
import type { RunningRegistry } from "../_helpers/registry.ts";

/** A client that downloads every blob over 4 parallel ranges from the start (threshold 0), quick retries. */
export function rangeClient(extra: RegistryClientOptions = {}): RegistryClient {
  return new RegistryClient({
    env: {},
    osReleasePath: "/nonexistent/os-release",
    retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 5 },
    connections: 4,
    rangeThreshold: 0,
    parallelBelowRate: Infinity,
    ...extra,
  });
}

/** Builds a 6 MiB single-layer image, pushes it as `repository:v1`, returns its layer's descriptor. */
export async function pushBigLayer(
  reg: RunningRegistry,
  dir: string,
  repository: string,
): Promise<Descriptor> {
  const img = await buildLargeImage(join(dir, "layout"), { sizeMiB: 6 });
  await pushImage(img, reg, { repository, tag: "v1" });
  const digest = img.layerDigests[0];
  if (digest === undefined) throw new Error("no layer");
  const size = (await Deno.stat(join(img.layoutDir, "blobs", "sha256", digestHex(digest)))).size;
  return { mediaType: "application/vnd.oci.image.layer.v1.tar", digest, size };
}

/**
 * The fault server in front of the real registry: every `/v2/` request is forwarded (with its Range)
 * and answered with the fault `choose` picks for it (`count`: the how-manieth request).
 */
export function rangeFaultServer(
  reg: RunningRegistry,
  choose: (req: Request, count: number) => RangeFault = () => ({ kind: "none" }),
  upstream: (path: string, init?: RequestInit) => Promise<Response> = reg.fetch,
): FaultServer {
  return startFaultServer([{
    path: /^\/v2\//,
    handler: (req, ctx) => forwardRange(req, upstream, choose(req, ctx.count)),
  }]);
}

/** The closed ranges asked for in recorded requests, as `[first, last]` byte pairs. */
export function closedRanges(requests: { headers: Record<string, string> }[]): [number, number][] {
  return requests.flatMap((q) => {
    const m = /^bytes=(\d+)-(\d+)$/.exec(q.headers["range"] ?? "");
    return m ? [[Number(m[1]), Number(m[2])] as [number, number]] : [];
  });
}

/** `sha256:<hex>` of a stream's bytes. */
export async function streamSha256(stream: ReadableStream<Uint8Array>): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of stream) hash.update(chunk);
  return `sha256:${hash.digest("hex")}`;
}

/** `sha256:<hex>` of a file. */
export async function fileSha256(path: string): Promise<string> {
  using f = await Deno.open(path, { read: true });
  return await streamSha256(f.readable);
}
