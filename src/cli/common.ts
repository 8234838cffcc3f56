/**
 * Options shared by every command, and how they are read (flags, then environment, then defaults).
 *
 * @module
 */
import { type Command, Option } from "commander";
import { DangerzoneError } from "../errors.ts";
import type { TransportOptions } from "../registry/transport.ts";

/** The defaults that serve Dangerzone. */
export const DEFAULT_IMAGE = "ghcr.io/freedomofpress/dangerzone/v1";

/** Common options as commander parses them. */
export interface CommonOptions {
  image?: string;
  pubkey?: string;
  rekorKey?: string;
  trustedRoot?: string;
  identity?: string;
  runtime?: "podman" | "docker";
  runtimePath?: string;
  dataDir?: string;
  json?: boolean;
  debug?: boolean;
  insecureRegistry?: string[];
  caCert?: string[];
  proxy?: string;
  timeout?: string;
  connections?: string;
  torIsolation?: boolean;
}

/** Adds the common options of DESIGN.md to a command. */
export function addCommonOptions(cmd: Command): Command {
  return cmd
    .option("--image <ref>", `image reference (default: ${DEFAULT_IMAGE}:latest)`)
    .option("--pubkey <file>", "trusted publisher public key (PEM); default: the pinned Dangerzone key")
    .option("--rekor-key <file>", "trusted Rekor public key (PEM); also $SIGSTORE_REKOR_PUBLIC_KEY")
    .option("--trusted-root <file>", "Sigstore trusted_root.json to take log keys and CAs from")
    .option("--identity <repo>", "signed docker-reference to expect (when pulling through a mirror)")
    .addOption(new Option("--runtime <name>", "container runtime (default: detect, podman first)").choices([
      "podman",
      "docker",
    ]))
    .option("--runtime-path <file>", "path of the podman or docker binary")
    .option(
      "--data-dir <dir>",
      "state directory (default: $DANGERZONE_DATA_DIR or $XDG_DATA_HOME/dangerzone)",
    )
    .option(
      "--insecure-registry <host>",
      "allow plain HTTP to this registry host[:port] (repeatable)",
      collect,
      [],
    )
    .option("--ca-cert <file>", "extra CA certificate (PEM) for registry TLS (repeatable)", collect, [])
    .option("--proxy <url>", "proxy for registry traffic: http://, https:// or socks5:// (Tor)")
    .option(
      "--timeout <seconds>",
      "network deadline: connect+headers and blob stalls after S s, documents after 2S s (default 60)",
    )
    .option("--connections <n>", "parallel Range connections for blobs over 16 MiB (1 turns them off)", "4")
    .option("--tor-isolation", "one Tor circuit per connection through a SOCKS5 proxy (default on Tails)")
    .option("--no-tor-isolation", "share one circuit (Tails) or the proxy's own credentials")
    .option("--json", "print one JSON document on stdout and nothing else there")
    .option("--debug", "print stack traces and protocol details on stderr");
}

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

/** Commander accumulator for repeatable options. */
function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
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
