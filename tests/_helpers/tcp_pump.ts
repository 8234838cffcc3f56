/**
 * What the test TCP relays share (the throttling proxy, the TLS-sniffing forwarder, the SOCKS5 server,
 * the dropping proxy): the byte pump, which copies one direction of a connection until EOF or a reset,
 * optionally capped to a rate, and the quiet close of connections that may be closed already.
 *
 * @module
 */

/** Options of {@linkcode pumpBytes}. */
export interface PumpOptions {
  /** Bytes per second this direction may carry (a token bucket); default: unlimited. */
  bytesPerSecond?: number | undefined;
  /** Most idle time the cap lets a burst make up for (default 50 ms). */
  burstMs?: number;
  /** Read size (default 64 KiB). */
  sliceBytes?: number;
}

/**
 * Copies `from` to `to` until `from` ends or either side fails (a reset ends this direction only;
 * the caller closes the sockets). Resolves, never rejects.
 */
export async function pumpBytes(from: Deno.Conn, to: Deno.Conn, options: PumpOptions = {}): Promise<void> {
  const buf = new Uint8Array(options.sliceBytes ?? 64 * 1024);
  const rate = options.bytesPerSecond;
  const burst = options.burstMs ?? 50;
  // when this direction may send next; idle time earns at most `burst` ms of credit
  let next = performance.now();
  try {
    for (;;) {
      const n = await from.read(buf);
      if (n === null) break;
      let off = 0;
      while (off < n) off += await to.write(buf.subarray(off, n));
      if (rate !== undefined) {
        next = Math.max(next, performance.now() - burst) + (n / rate) * 1000;
        const wait = next - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
    }
  } catch {
    // a reset on either side ends this direction
  }
}

/**
 * Closes connections that may be closed already (by the peer, a pump or `pipeTo`), and removes them
 * from `open`, the set a relay keeps to close what is left when it stops.
 */
export function closeQuietly(conns: Iterable<Deno.Conn | undefined>, open?: Set<Deno.Conn>): void {
  for (const c of [...conns]) {
    if (c === undefined) continue;
    open?.delete(c);
    try {
      c.close();
    } catch {
      // already closed
    }
  }
}
