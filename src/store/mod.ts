/**
 * The signature store, anti-rollback state and data-directory lock.
 *
 * @module
 */
export { resolveDataDir, type ResolveDataDirOptions } from "./data_dir.ts";
export { SignatureStore } from "./signature_store.ts";
export {
  checkRollback,
  type CheckRollbackOptions,
  type InstalledTime,
  type LogState,
  type LogStateEntry,
  type LogStateOptions,
  LogStateStore,
  PRODUCTION_REKOR_LOG_ID,
  type RollbackVerdict,
} from "./log_state.ts";
export { LOCK_FILE_NAME, StoreLock, withStoreLock } from "./lock.ts";
