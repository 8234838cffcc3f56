/**
 * Platform parsing, normalisation and selection from an index.
 *
 * @module
 */
import { DangerzoneError } from "../errors.ts";
import type { Descriptor, Platform } from "./descriptor.ts";
import type { ImageIndex } from "./manifest.ts";

const ARCH_ALIASES: Record<string, { architecture: string; variant?: string }> = {
  "x86_64": { architecture: "amd64" },
  "x86-64": { architecture: "amd64" },
  aarch64: { architecture: "arm64" },
  armhf: { architecture: "arm", variant: "v7" },
  armel: { architecture: "arm", variant: "v6" },
  i386: { architecture: "386" },
  i686: { architecture: "386" },
};

/**
 * Normalises a platform the way containerd does: architecture aliases (`x86_64` -> `amd64`,
 * `aarch64` -> `arm64`), `arm64` variant defaults to `v8`, `arm` to `v7`, `amd64` `v1` is dropped.
 */
export function normalizePlatform(p: Platform): Platform {
  const os = p.os.toLowerCase();
  let architecture = p.architecture.toLowerCase();
  let variant = p.variant?.toLowerCase();
  const alias = ARCH_ALIASES[architecture];
  if (alias !== undefined) {
    architecture = alias.architecture;
    if (variant === undefined && alias.variant !== undefined) variant = alias.variant;
  }
  if (architecture === "arm64" && (variant === undefined || variant === "" || variant === "8")) {
    variant = "v8";
  }
  if (architecture === "arm" && (variant === undefined || variant === "")) variant = "v7";
  if (architecture === "arm" && variant !== undefined && /^[5-8]$/.test(variant)) variant = `v${variant}`;
  if (architecture === "amd64" && (variant === "v1" || variant === "")) variant = undefined;
  return variant === undefined ? { os, architecture } : { os, architecture, variant };
}

/**
 * Parses `os/arch[/variant]` or a bare `arch` (os `linux`), e.g. `linux/arm64`, `amd64`.
 * Throws `USAGE` on malformed input.
 */
export function parsePlatform(text: string): Platform {
  const parts = text.split("/");
  const bad = parts.some((p) => !/^[a-zA-Z0-9._-]+$/.test(p));
  if (bad || parts.length > 3) {
    throw new DangerzoneError("USAGE", `invalid platform '${text.slice(0, 80)}'`, {
      hint: "use os/architecture[/variant], e.g. linux/amd64 or linux/arm64",
    });
  }
  const [a, b, c] = parts;
  if (parts.length === 1 && a !== undefined) return normalizePlatform({ os: "linux", architecture: a });
  if (a === undefined || b === undefined) throw new DangerzoneError("USAGE", `invalid platform '${text}'`);
  return normalizePlatform(
    c === undefined ? { os: a, architecture: b } : { os: a, architecture: b, variant: c },
  );
}

/** `os/arch[/variant]`. */
export function formatPlatform(p: Platform): string {
  return p.variant === undefined || p.variant === ""
    ? `${p.os}/${p.architecture}`
    : `${p.os}/${p.architecture}/${p.variant}`;
}

/**
 * Picks the one index entry for `want`. Entries without a platform or with `unknown/unknown`
 * (attestations) are skipped. When `want` has no variant, any variant of that os/arch matches.
 * Throws `PLATFORM_NOT_FOUND` or `PLATFORM_AMBIGUOUS`, listing the platforms that exist.
 *
 * @example
 * ```ts
 * import { selectPlatform, parsePlatform } from "./platform.ts";
 * import type { ImageIndex } from "./manifest.ts";
 * declare const index: ImageIndex;
 * const entry = selectPlatform(index, parsePlatform("linux/amd64"));
 * ```
 */
export function selectPlatform(index: ImageIndex, want: Platform): Descriptor {
  const wanted = normalizePlatform(want);
  const candidates = index.manifests.filter((d) =>
    d.platform !== undefined && !(d.platform.os === "unknown" && d.platform.architecture === "unknown")
  );
  const matches = candidates.filter((d) => d.platform !== undefined && platformMatches(d.platform, wanted));
  const available =
    [...new Set(candidates.map((d) => d.platform ? formatPlatform(normalizePlatform(d.platform)) : ""))]
      .join(", ") || "none";
  const first = matches[0];
  if (first === undefined) {
    throw new DangerzoneError(
      "PLATFORM_NOT_FOUND",
      `the image has no ${formatPlatform(wanted)} variant; available: ${available}`,
      { hint: "choose one of the available platforms" },
    );
  }
  const distinct = new Set(matches.map((d) => d.digest));
  if (distinct.size > 1) {
    const listed = matches.map((d) =>
      `${d.platform ? formatPlatform(d.platform) : "?"} ${d.digest.slice(0, 19)}…`
    );
    throw new DangerzoneError(
      "PLATFORM_AMBIGUOUS",
      `the image has ${distinct.size} entries for ${formatPlatform(wanted)}: ${listed.join(", ")}`,
      { hint: "name the variant explicitly (e.g. linux/arm/v7) or pin the image by digest" },
    );
  }
  return first;
}

function platformMatches(have: Platform, wanted: Platform): boolean {
  const h = normalizePlatform(have);
  if (h.os !== wanted.os || h.architecture !== wanted.architecture) return false;
  return wanted.variant === undefined || wanted.variant === h.variant;
}
