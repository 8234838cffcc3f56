/**
 * Image references as the distribution spec defines them: `[host[:port]/]path[:tag][@digest]`,
 * with docker.io normalisation (`ubuntu` is `docker.io/library/ubuntu`).
 *
 * @module
 */
import { DangerzoneError } from "../errors.ts";
import { type Digest, isDigest } from "./digest.ts";

/** The registry that a reference without a host points at. */
export const DOCKER_HUB = "docker.io";

const DOMAIN_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const DOMAIN_RE = new RegExp(
  `^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]{1,5})?$`,
);
const PATH_COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const MAX_NAME_LENGTH = 255;

/**
 * A parsed image reference. `registry` is the normalised host (`docker.io` for Docker Hub),
 * `repository` the path (`library/ubuntu`); `tag` and `digest` may both be present.
 */
export class Reference {
  /** Registry host, optionally with `:port` (normalised: `docker.io` for Docker Hub). */
  readonly registry: string;
  /** Repository path, e.g. `freedomofpress/dangerzone/v1`. */
  readonly repository: string;
  /** The tag, if any. */
  readonly tag: string | undefined;
  /** The digest, if any. */
  readonly digest: Digest | undefined;

  /** Builds a reference from parts that are already valid; use {@linkcode parseReference} for text. */
  constructor(
    parts: { registry: string; repository: string; tag?: string | undefined; digest?: Digest | undefined },
  ) {
    this.registry = parts.registry;
    this.repository = parts.repository;
    this.tag = parts.tag;
    this.digest = parts.digest;
  }

  /** `registry/repository[:tag][@digest]`, the canonical text form. */
  format(): string {
    let out = `${this.registry}/${this.repository}`;
    if (this.tag !== undefined) out += `:${this.tag}`;
    if (this.digest !== undefined) out += `@${this.digest}`;
    return out;
  }

  /** `registry/repository`, without tag or digest. */
  name(): string {
    return `${this.registry}/${this.repository}`;
  }

  /** The same repository pinned to `digest` (the tag is kept for display). */
  withDigest(digest: Digest): Reference {
    return new Reference({ registry: this.registry, repository: this.repository, tag: this.tag, digest });
  }

  /** The same repository at `tag`, without a digest. */
  withTag(tag: string): Reference {
    if (!TAG_RE.test(tag)) throw invalid(tag, `tag '${tag.slice(0, 140)}' is not a valid tag`);
    return new Reference({ registry: this.registry, repository: this.repository, tag });
  }

  /** The digest if present, else the tag, else `latest`: what to ask the registry for. */
  identifier(): string {
    return this.digest ?? this.tag ?? "latest";
  }

  /** Same as {@linkcode Reference.format}. */
  toString(): string {
    return this.format();
  }
}

/**
 * Parses an image reference. A first path component is a host when it contains `.` or `:`,
 * or is `localhost`. Docker Hub names are normalised (`index.docker.io` -> `docker.io`, and
 * a one-segment repository gets `library/`).
 *
 * @example
 * ```ts
 * import { parseReference } from "./reference.ts";
 * const ref = parseReference("ghcr.io/freedomofpress/dangerzone/v1:latest");
 * console.log(ref.registry, ref.repository, ref.tag);
 * ```
 */
export function parseReference(untrusted: string): Reference {
  const text = untrusted;
  if (text.length === 0) throw invalid(text, "image reference is empty");
  if (text.length > 512 || /\s/.test(text)) {
    throw invalid(text, "image reference contains whitespace or is too long");
  }
  let rest = text;
  let digest: Digest | undefined;
  const at = rest.indexOf("@");
  if (at !== -1) {
    const d = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!isDigest(d)) {
      throw invalid(text, `digest '${d.slice(0, 80)}' is not sha256: followed by 64 lowercase hex digits`);
    }
    digest = d;
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf("/");
  const colon = rest.lastIndexOf(":");
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) {
      throw invalid(
        text,
        `tag '${tag.slice(0, 140)}' is not valid (letters, digits, '_', '.', '-'; max 128)`,
      );
    }
  }
  if (rest.length === 0) throw invalid(text, "image reference has no repository name");
  let registry = DOCKER_HUB;
  let path = rest;
  const firstSlash = rest.indexOf("/");
  if (firstSlash !== -1) {
    const first = rest.slice(0, firstSlash);
    if (first.includes(".") || first.includes(":") || first === "localhost" || first.startsWith("[")) {
      registry = first;
      path = rest.slice(firstSlash + 1);
      if (!DOMAIN_RE.test(registry)) {
        throw invalid(text, `registry host '${registry.slice(0, 140)}' is not valid`);
      }
      const port = /:([0-9]+)$/.exec(registry)?.[1];
      if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) {
        throw invalid(text, `registry port ${port} is out of range`);
      }
    }
  }
  if (path.length === 0) throw invalid(text, "image reference has no repository name");
  for (const component of path.split("/")) {
    if (!PATH_COMPONENT_RE.test(component)) {
      throw invalid(
        text,
        `repository component '${
          component.slice(0, 80)
        }' is not valid (lowercase letters, digits, separators)`,
      );
    }
  }
  registry = normalizeRegistry(registry);
  if (registry === DOCKER_HUB && !path.includes("/")) path = `library/${path}`;
  if (registry.length + 1 + path.length > MAX_NAME_LENGTH) {
    throw invalid(text, `repository name is longer than ${MAX_NAME_LENGTH} characters`);
  }
  return new Reference({ registry, repository: path, tag, digest });
}

/** Lowercases the host and folds Docker Hub's aliases into `docker.io`. */
export function normalizeRegistry(host: string): string {
  const lower = host.toLowerCase();
  if (lower === "index.docker.io" || lower === "registry-1.docker.io") return DOCKER_HUB;
  return lower;
}

function invalid(text: string, why: string): DangerzoneError {
  return new DangerzoneError("REFERENCE_INVALID", `invalid image reference '${text.slice(0, 200)}': ${why}`, {
    hint: "use the form host[:port]/repository[:tag][@sha256:<64 hex>]",
  });
}
