import assert from "node:assert/strict";
import { classifyTlsFailure } from "../../src/registry/_tls_failure.ts";

/** The shape of a Deno fetch failure: a TypeError whose cause carries the rustls text. */
function fetchError(text: string): TypeError {
  return new TypeError("fetch failed", {
    cause: new Error(
      `error sending request for url (https://127.0.0.1:5000/v2/): client error (Connect): ${text}`,
    ),
  });
}

Deno.test("classifyTlsFailure() reads Deno's rustls texts from the cause chain", () => {
  assert.deepEqual(classifyTlsFailure(fetchError("received corrupt message of type InvalidContentType")), {
    kind: "not-tls",
  });
  assert.deepEqual(classifyTlsFailure(fetchError("invalid peer certificate: UnknownIssuer")), {
    kind: "certificate",
    reason: "UnknownIssuer",
  });
  assert.deepEqual(classifyTlsFailure(fetchError("invalid peer certificate: NotValidForName")), {
    kind: "certificate",
    reason: "NotValidForName",
  });
});

Deno.test("classifyTlsFailure() does not treat ambiguous failures as 'not TLS'", () => {
  for (
    const text of [
      "tls handshake eof",
      "tcp connect error: Connection refused (os error 111)",
      "received fatal alert: HandshakeFailure",
      "connection reset by peer",
    ]
  ) {
    assert.equal(classifyTlsFailure(fetchError(text)), undefined, text);
  }
  assert.equal(classifyTlsFailure("InvalidContentType"), undefined);
});
