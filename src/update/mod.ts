/**
 * The update policies that tie registry, verification, store and runtime together: remote verification
 * (steps 1-2 of `upgrade`), `check`, `store-signatures` and `verify-local`.
 *
 * @module
 */
export * from "./context.ts";
export * from "./verify_remote.ts";
export * from "./check.ts";
export * from "./store_signatures.ts";
export * from "./verify_local.ts";
