/**
 * A minimal SOCKS5 server on 127.0.0.1 for tests: no-auth or username/password auth
 * (RFC 1929), CONNECT only, and only to 127.0.0.1/localhost. It records the usernames it saw
 * and the targets requested, to prove that traffic took the SOCKS path (and, for Tails, that
 * each run used a fresh random username).
 *
 * @module
 */
import { closeQuietly } from "./tcp_pump.ts";

/** Options of {@linkcode startSocks5Server}. */
export interface Socks5Options {
  /** Require username/password auth (method 0x02); otherwise accept no-auth (0x00). */
  requireAuth?: boolean;
  /** Domain names (as sent with socks5h) that connect to 127.0.0.1, to fake non-loopback hosts. */
  loopbackNames?: readonly string[];
}

/** A running SOCKS5 server. */
export interface Socks5Server {
  /** The listening port. */
  port: number;
  /** Usernames received, in order. */
  usernames: string[];
  /** Targets requested (`host:port` as sent: a domain for socks5h, an IP for socks5). */
  targets: string[];
  /** Number of accepted connections. */
  connections: () => number;
  /** Stops listening and closes every connection. */
  close(): Promise<void>;
}

class ByteReader {
  #buf = new Uint8Array(0);
  readonly #conn: Deno.Conn;
  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }
  async read(n: number): Promise<Uint8Array> {
    while (this.#buf.length < n) {
      const chunk = new Uint8Array(4096);
      const got = await this.#conn.read(chunk);
      if (got === null) throw new Error("socks5: connection closed during handshake");
      const next = new Uint8Array(this.#buf.length + got);
      next.set(this.#buf);
      next.set(chunk.subarray(0, got), this.#buf.length);
      this.#buf = next;
    }
    const out = this.#buf.slice(0, n);
    this.#buf = this.#buf.slice(n);
    return out;
  }
  rest(): Uint8Array {
    return this.#buf;
  }
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await conn.write(data.subarray(off));
}

/** Starts the server. */
export function startSocks5Server(options: Socks5Options = {}): Socks5Server {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const usernames: string[] = [];
  const targets: string[] = [];
  const open = new Set<Deno.Conn>();
  const tasks = new Set<Promise<void>>();
  let accepted = 0;

  async function handle(client: Deno.Conn): Promise<void> {
    let upstream: Deno.Conn | undefined;
    try {
      const r = new ByteReader(client);
      const [ver, nmethods] = await r.read(2);
      if (ver !== 5) return;
      const methods = await r.read(nmethods ?? 0);
      const method = options.requireAuth ? 2 : 0;
      if (!methods.includes(method)) {
        await writeAll(client, new Uint8Array([5, 0xff]));
        return;
      }
      await writeAll(client, new Uint8Array([5, method]));
      if (method === 2) {
        const [, ulen] = await r.read(2);
        const user = new TextDecoder().decode(await r.read(ulen ?? 0));
        const [plen] = await r.read(1);
        await r.read(plen ?? 0);
        usernames.push(user);
        await writeAll(client, new Uint8Array([1, 0]));
      }
      const [, cmd, , atyp] = await r.read(4);
      let host = "";
      if (atyp === 1) host = Array.from(await r.read(4)).join(".");
      else if (atyp === 3) {
        const [len] = await r.read(1);
        host = new TextDecoder().decode(await r.read(len ?? 0));
      } else if (atyp === 4) {
        await r.read(16);
        host = "ipv6";
      }
      const portBytes = await r.read(2);
      const port = ((portBytes[0] ?? 0) << 8) | (portBytes[1] ?? 0);
      targets.push(`${host}:${port}`);
      const allowed = cmd === 1 &&
        (host === "127.0.0.1" || host === "localhost" || (options.loopbackNames ?? []).includes(host));
      if (!allowed) {
        await writeAll(client, new Uint8Array([5, 2, 0, 1, 0, 0, 0, 0, 0, 0]));
        return;
      }
      try {
        upstream = await Deno.connect({ hostname: "127.0.0.1", port });
      } catch {
        await writeAll(client, new Uint8Array([5, 5, 0, 1, 0, 0, 0, 0, 0, 0]));
        return;
      }
      open.add(upstream);
      await writeAll(client, new Uint8Array([5, 0, 0, 1, 0, 0, 0, 0, 0, 0]));
      const rest = r.rest();
      if (rest.length > 0) await writeAll(upstream, rest);
      const up = upstream;
      await Promise.allSettled([
        client.readable.pipeTo(up.writable),
        up.readable.pipeTo(client.writable),
      ]);
    } catch {
      // a broken test connection ends that connection only
    } finally {
      closeQuietly([client, upstream], open);
    }
  }

  const acceptLoop = (async () => {
    try {
      for await (const conn of listener) {
        accepted++;
        open.add(conn);
        const t = handle(conn);
        tasks.add(t);
        t.finally(() => tasks.delete(t));
      }
    } catch {
      // listener closed
    }
  })();

  return {
    port: listener.addr.port,
    usernames,
    targets,
    connections: () => accepted,
    async close() {
      listener.close();
      closeQuietly(open);
      await acceptLoop;
      await Promise.allSettled([...tasks]);
    },
  };
}
