/**
 * Classification of TLS connection failures from `fetch` (Deno's rustls messages), so that the
 * transport can tell "this server does not speak TLS at all" (the only case in which a loopback
 * registry may fall back to plain HTTP) from "this server speaks TLS but its certificate is not
 * trusted" (never a reason to downgrade).
 *
 * The texts were checked against Deno 2.9 on loopback: an https request to a plain HTTP server
 * fails with `received corrupt message of type InvalidContentType` (the server's `HTTP/1.1 400`
 * reply is not a TLS record); an untrusted certificate fails with
 * `invalid peer certificate: UnknownIssuer` (or `NotValidForName`, `Expired`, ...).
 *
 * @module
 */

/** Why a TLS connection failed, when it is one of the cases the transport treats specially. */
export type TlsFailure =
  | { kind: "not-tls" }
  | { kind: "certificate"; reason: string };

/** Classifies a `fetch` error (searching its whole `cause` chain); `undefined` for anything else. */
export function classifyTlsFailure(err: unknown): TlsFailure | undefined {
  const text = errorChainText(err);
  const cert = /invalid peer certificate:\s*([^\n]*)/i.exec(text);
  if (cert !== null) {
    const reason = (cert[1] ?? "").replace(/\s+/g, " ").trim().slice(0, 120);
    return { kind: "certificate", reason: reason === "" ? "untrusted" : reason };
  }
  // a TLS client reading a plain-HTTP reply sees a record whose content type byte is 'H'
  if (/corrupt message of type InvalidContentType/i.test(text)) return { kind: "not-tls" };
  return undefined;
}

function errorChainText(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  for (let depth = 0; depth < 8 && e !== undefined && e !== null; depth++) {
    parts.push(e instanceof Error ? e.message : String(e));
    e = e instanceof Error ? e.cause : undefined;
  }
  return parts.join("\n");
}
