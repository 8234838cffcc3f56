/**
 * The registry client over the OCI distribution API: transport policy, credentials, client.
 *
 * @module
 */
export * from "./client.ts";
export * from "./credentials.ts";
export * from "./transport.ts";
