/**
 * Private: reading response bodies that are documents (bounded in size) and throwing away the
 * ones nobody needs.
 *
 * @module
 */
import { DangerzoneError } from "../errors.ts";
import { documentDeadlineOf, seconds, timeoutError } from "./_deadlines.ts";

const MAX_ERROR_BODY = 16 * 1024;

/**
 * Reads a response body up to `limit` bytes; more is `SIZE_LIMIT_EXCEEDED` (checked while
 * streaming, so an endless body cannot exhaust memory). A `Content-Length` over the limit fails
 * before reading. A response from the transport must also be complete by its document deadline
 * (`REGISTRY_TIMEOUT`), so a trickling server cannot hold a command.
 */
export async function readLimited(response: Response, limit: number, what: string): Promise<Uint8Array> {
  const declared = response.headers.get("content-length");
  if (declared !== null && Number(declared) > limit) {
    await discard(response);
    throw new DangerzoneError(
      "SIZE_LIMIT_EXCEEDED",
      `${what} is ${declared} bytes, more than the ${limit} allowed`,
    );
  }
  if (response.body === null) return new Uint8Array();
  const reader = response.body.getReader();
  const deadline = documentDeadlineOf(response);
  let timedOut = false;
  const timer = deadline === undefined ? undefined : setTimeout(() => {
    timedOut = true;
    reader.cancel().catch(() => {}); // ends the pending read
  }, Math.max(0, deadline.at - Date.now()));
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      let result: ReadableStreamReadResult<Uint8Array>;
      try {
        result = await reader.read();
      } catch (cause) {
        // A connection that breaks mid-body is the registry's failure, never an internal error.
        if (!timedOut) {
          throw new DangerzoneError("SHORT_READ", `${what}: the connection broke while reading it`, {
            cause,
          });
        }
        result = { done: true };
      }
      if (timedOut && deadline !== undefined) {
        throw timeoutError(
          deadline.host,
          `${what} not complete within ${seconds(deadline.ms)} (document deadline)`,
        );
      }
      const { done, value } = result;
      if (done) break;
      total += value.byteLength;
      if (total > limit) {
        await reader.cancel().catch(() => {});
        throw new DangerzoneError("SIZE_LIMIT_EXCEEDED", `${what} is larger than the ${limit} bytes allowed`);
      }
      chunks.push(value);
    }
  } finally {
    clearTimeout(timer);
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  return out;
}

/** Cancels a body that is not needed (a failure to cancel it changes nothing). */
export async function discard(response: Response): Promise<void> {
  try {
    await response.body?.cancel();
  } catch {
    // the body is being thrown away; a failure to cancel it changes nothing
  }
}

/** ` (CODE)` from a distribution error body, or "" (the body is informational only). */
export async function errorCode(response: Response): Promise<string> {
  try {
    const bytes = await readLimited(response, MAX_ERROR_BODY, "error body");
    const untrusted: unknown = JSON.parse(new TextDecoder().decode(bytes));
    if (typeof untrusted === "object" && untrusted !== null && "errors" in untrusted) {
      const errors = untrusted.errors;
      if (Array.isArray(errors)) {
        const first: unknown = errors[0];
        if (typeof first === "object" && first !== null && "code" in first) {
          const code = first.code;
          if (typeof code === "string" && /^[A-Z_]{1,40}$/.test(code)) return ` (${code})`;
        }
      }
    }
  } catch {
    // the error body is informational only
  }
  return "";
}
