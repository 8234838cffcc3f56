/**
 * Private: the `oci-layout` marker file, and the tag annotation of `index.json`.
 *
 * @module
 */
import { DangerzoneError } from "../errors.ts";
import { isObject } from "../oci/_assert.ts";
import { parseStrictJsonAs } from "../strict_json.ts";

/** The exact bytes `cosign save` (and ggcr) writes to `oci-layout`. */
export const OCI_LAYOUT_BYTES: Uint8Array = new TextEncoder().encode(
  '{\n    "imageLayoutVersion": "1.0.0"\n}',
);

/** The annotation that names a tag in `index.json` (OCI image layout spec). */
export const REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name";

/** Largest `oci-layout` file accepted. */
export const MAX_OCI_LAYOUT_BYTES = 4096;

/** Checks untrusted `oci-layout` bytes: a JSON object with `imageLayoutVersion` "1.0.0". */
export function assertOciLayoutFile(untrusted: Uint8Array, where: string): void {
  if (untrusted.length > MAX_OCI_LAYOUT_BYTES) {
    throw new DangerzoneError(
      "ARCHIVE_INVALID",
      `${where}: oci-layout is larger than ${MAX_OCI_LAYOUT_BYTES} bytes`,
    );
  }
  const value = parseStrictJsonAs(untrusted, `${where}: oci-layout`);
  if (!isObject(value) || value.imageLayoutVersion !== "1.0.0") {
    throw new DangerzoneError(
      "ARCHIVE_INVALID",
      `${where}: oci-layout must say {"imageLayoutVersion": "1.0.0"}`,
      { hint: "this is not an OCI image layout this tool understands" },
    );
  }
}
