/**
 * Redaction of URLs and free text before they reach an error message or a log line
 * (ggcr `redactURL`): user info is dropped and query parameters not on an allow-list are
 * replaced, so signed URLs and tokens never leak.
 *
 * @module
 */

const ALLOWED_QUERY = new Set(["n", "last", "digest", "scope", "service", "artifactType", "mount", "from"]);

/** The URL with user info removed and non-allow-listed query values replaced by `REDACTED`. */
export function redactUrl(url: string | URL): string {
  let u: URL;
  try {
    u = new URL(String(url));
  } catch {
    return "<invalid URL>";
  }
  u.username = "";
  u.password = "";
  u.hash = "";
  const params = [...u.searchParams.entries()];
  if (params.length === 0) return u.toString();
  const kept = params.map(([k, v]) =>
    `${encodeURIComponent(k)}=${ALLOWED_QUERY.has(k) ? encodeURIComponent(v) : "REDACTED"}`
  );
  u.search = "";
  return `${u.toString()}?${kept.join("&")}`;
}

/** Replaces query strings and user info of any URL inside free text (e.g. a fetch error message). */
export function redactText(text: string): string {
  return text
    .replace(/([a-z][a-z0-9+.-]*:\/\/)[^\s/@"']*@/gi, "$1")
    .replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^\s"'?#]*)\?[^\s"'#]*/gi, "$1?REDACTED")
    .replace(/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/g, "$1 REDACTED");
}

/** A copy of an error safe to keep as `cause`: message redacted, no stack of foreign frames. */
export function redactedCause(err: unknown): Error {
  const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  const out = new Error(redactText(message));
  if (err instanceof Error && err.cause !== undefined) out.cause = redactedCause(err.cause);
  return out;
}
