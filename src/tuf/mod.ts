/**
 * Sigstore trust material through TUF: `trust-root update` ({@linkcode updateTrustRoot}), what is in
 * use ({@linkcode trustRootStatus}), the Rekor key PEMs ({@linkcode rekorKeyPems}) and the stored
 * trusted root verification uses ({@linkcode storedTrustedRoot}).
 *
 * @module
 */
export {
  parseTufUrl,
  type TrustRootUpdate,
  type TufRootSource,
  updateTrustRoot,
  type UpdateTrustRootOptions,
} from "./update.ts";
export {
  type AuthorityInfo,
  type LogKeyInfo,
  type TrustRootStatus,
  trustRootStatus,
  type TrustRootStatusOptions,
} from "./show.ts";
// Types the public API refers to, re-exported so its documentation is complete.
export type { HttpClientForOptions } from "../registry/http_client_for.ts";
export type { HttpClientsOptions } from "../registry/_http_client.ts";
export { type ExportedRekorKey, rekorKeyPems, type RekorKeySelection, spkiPem } from "./rekor_key_pem.ts";
export {
  DEFAULT_TUF_URL,
  storedTrustedRoot,
  storedTrustedRootFile,
  storedTrustedRootPath,
  tufCacheDir,
} from "./stored_trusted_root.ts";
export { describeTufRoot, type TufRootInfo } from "./tuf_root.ts";
