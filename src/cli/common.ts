/**
 * Options shared by every command, and how they are read (flags, then environment, then defaults).
 *
 * @module
 */
import { DangerzoneError } from "../errors.ts";
import type { TransportOptions } from "../registry/transport.ts";
import type { CommonOptions, OptionSpec } from "./spec.ts";

/** The defaults that serve Dangerzone. */
export const DEFAULT_IMAGE = "ghcr.io/freedomofpress/dangerzone/v1";

export type { CommonOptions } from "./spec.ts";

/**
 * The common options of DESIGN.md, which every command takes (as data: commander and the start-up
 * parser both read this table).
 */
export const COMMON_OPTIONS: readonly OptionSpec[] = [
  { flags: "--image <ref>", description: `image reference (default: ${DEFAULT_IMAGE}:latest)` },
  {
    flags: "--pubkey <file>",
    description: "trusted publisher public key (PEM); default: the pinned Dangerzone key",
  },
  {
    flags: "--rekor-key <file>",
    description: "trusted Rekor public key (PEM); also $SIGSTORE_REKOR_PUBLIC_KEY",
  },
  { flags: "--trusted-root <file>", description: "Sigstore trusted_root.json to take log keys and CAs from" },
  {
    flags: "--identity <repo>",
    description: "signed docker-reference to expect (when pulling through a mirror)",
  },
  {
    flags: "--runtime <name>",
    description: "container runtime (default: detect, podman first)",
    choices: ["podman", "docker"],
  },
  { flags: "--runtime-path <file>", description: "path of the podman or docker binary" },
  {
    flags: "--data-dir <dir>",
    description: "state directory (default: $DANGERZONE_DATA_DIR or $XDG_DATA_HOME/dangerzone)",
  },
  {
    flags: "--insecure-registry <host>",
    description: "allow plain HTTP to this registry host[:port] (repeatable)",
    repeatable: true,
  },
  {
    flags: "--ca-cert <file>",
    description: "extra CA certificate (PEM) for registry TLS (repeatable)",
    repeatable: true,
  },
  { flags: "--proxy <url>", description: "proxy for registry traffic: http://, https:// or socks5:// (Tor)" },
  {
    flags: "--timeout <seconds>",
    description:
      "network deadline: connect+headers and blob stalls after S s, documents after 2S s (default 60)",
  },
  {
    flags: "--connections <n>",
    description: "parallel Range connections for blobs over 16 MiB (1 turns them off)",
    defaultValue: "4",
  },
  {
    flags: "--tor-isolation",
    description: "one Tor circuit per connection through a SOCKS5 proxy (default on Tails)",
  },
  { flags: "--no-tor-isolation", description: "share one circuit (Tails) or the proxy's own credentials" },
  { flags: "--json", description: "print one JSON document on stdout and nothing else there" },
  { flags: "--debug", description: "print stack traces and protocol details on stderr" },
];

/** The `--connections` value: a whole number from 1 to 16 (`USAGE` otherwise). */
export function connectionsOption(text: string | undefined): number {
  const n = Number(text ?? "4");
  if (!/^\d{1,2}$/.test(text ?? "4") || n < 1 || n > 16) {
    throw new DangerzoneError(
      "USAGE",
      `--connections must be a number from 1 to 16, not '${(text ?? "").slice(0, 20)}'`,
    );
  }
  return n;
}

/**
 * The transport deadlines of `--timeout S`: connect and response headers within S seconds, a
 * document (manifest, token, signature) within 2S, a blob stalled after S seconds without data
 * or under 1 KiB/s over S seconds. Without the flag the transport's Tor-friendly defaults apply.
 */
export function deadlineOptions(options: CommonOptions): Partial<TransportOptions> {
  if (options.timeout === undefined) return {};
  const s = Number(options.timeout);
  if (!/^\d+(\.\d+)?$/.test(options.timeout.trim()) || !(s > 0) || s > 86_400) {
    throw new DangerzoneError("USAGE", "--timeout must be a number of seconds above 0 and at most 86400");
  }
  const ms = Math.round(s * 1000);
  return { headersTimeoutMs: ms, documentTimeoutMs: 2 * ms, idleTimeoutMs: ms, blobRateWindowMs: ms };
}
