/**
 * Reads the bundle file of the signature store (`<digest hex>.bundles.json`): a JSON list of Sigstore
 * bundles, each element's exact text kept for verification. Strict (duplicate keys, trailing data and
 * non-objects are refused) and bounded. Private to `src/store/`.
 *
 * @module
 */
import { DangerzoneError } from "../errors.ts";
import { decodeUtf8, isJsonObject, parseStrictJsonArray } from "../strict_json.ts";
import type { UntrustedBundleEntry } from "../sigstore/cosign/bundle_signature.ts";
import { MAX_SIGNATURES } from "../sigstore/cosign/cosign_signature.ts";

/** Parses the bundle file's bytes into untrusted entries, or throws `STORE_INVALID`. */
export function parseBundleList(untrustedBytes: Uint8Array, path: string): UntrustedBundleEntry[] {
  let elements;
  try {
    elements = parseStrictJsonArray(decodeUtf8(untrustedBytes), MAX_SIGNATURES);
  } catch (err) {
    throw new DangerzoneError("STORE_INVALID", `${path} is not a JSON list of bundles: ${String(err)}`, {
      cause: err,
      hint: "remove the file and run `dangerzone-image store-signatures` again",
    });
  }
  return elements.map((e, index) => {
    if (!isJsonObject(e.value)) {
      throw new DangerzoneError("STORE_INVALID", `${path}: element ${index + 1} is not a bundle object`, {
        hint: "remove the file and run `dangerzone-image store-signatures` again",
      });
    }
    return { index, raw: e.raw };
  });
}
