/**
 * The policies that tie the modules together (DESIGN "Architecture"): see `src/update/`.
 *
 * @module
 */
export * from "./update/mod.ts";
