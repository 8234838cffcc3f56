/**
 * A TCP relay on 127.0.0.1 in front of a real server that caps EACH connection's download rate, like
 * a CDN's per-connection cap or one Tor circuit: a client that opens more connections gets more
 * bandwidth. It relays bytes unchanged (any HTTP client, curl and skopeo included, talks to it as if
 * it were the server) and counts the connections it accepted.
 *
 * @module
 */
import { closeQuietly, pumpBytes } from "./tcp_pump.ts";

/** A running throttling relay. */
export interface ThrottleProxy extends AsyncDisposable {
  /** `127.0.0.1:<port>`, usable as a registry host. */
  host: string;
  /** The port. */
  port: number;
  /** Connections accepted so far. */
  connections(): number;
  /** Most connections that were open at the same time. */
  peakConcurrent(): number;
  /** Stops listening and closes every connection. */
  close(): Promise<void>;
}

/** Options of {@linkcode startThrottleProxy}. */
export interface ThrottleOptions {
  /** The server, `host:port` on loopback. */
  target: string;
  /** Bytes per second each connection may receive from the server. */
  bytesPerSecond: number;
}

const SLICE = 64 * 1024;
/** Most idle time a connection may make up for with a burst. */
const BURST_MS = 50;

/** Starts the relay. */
export function startThrottleProxy(options: ThrottleOptions): ThrottleProxy {
  const [hostname = "127.0.0.1", portText = "80"] = options.target.split(":");
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  const tasks = new Set<Promise<void>>();
  let accepted = 0;
  let peak = 0;

  const pump = async (from: Deno.Conn, to: Deno.Conn, rate: number | undefined): Promise<void> => {
    await pumpBytes(from, to, { bytesPerSecond: rate, burstMs: BURST_MS, sliceBytes: SLICE });
    await to.closeWrite().catch(() => {}); // already closed
  };

  const serve = async (client: Deno.Conn): Promise<void> => {
    let server: Deno.Conn | undefined;
    try {
      server = await Deno.connect({ hostname, port: Number(portText) });
      open.add(server);
      await Promise.all([pump(client, server, undefined), pump(server, client, options.bytesPerSecond)]);
    } catch {
      // the server refused; the client sees its connection closed
    } finally {
      closeQuietly([client, server], open);
    }
  };

  const acceptLoop = (async () => {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch {
        return;
      }
      accepted++;
      open.add(conn);
      const task = serve(conn).finally(() => tasks.delete(task));
      tasks.add(task);
      const clients = [...open].filter((c) => (c.localAddr as Deno.NetAddr).port === port).length;
      peak = Math.max(peak, clients);
    }
  })();

  const port = (listener.addr as Deno.NetAddr).port;
  const close = async () => {
    try {
      listener.close();
    } catch {
      // already closed
    }
    closeQuietly(open, open);
    await acceptLoop;
    await Promise.all(tasks);
  };
  return {
    host: `127.0.0.1:${port}`,
    port,
    connections: () => accepted,
    peakConcurrent: () => peak,
    close,
    [Symbol.asyncDispose]: close,
  };
}
