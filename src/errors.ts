/**
 * The one error type of dangerzone-image.
 *
 * Every failure the library reports is a {@linkcode DangerzoneError} with a stable string `code`.
 * Codes are grouped by area; cryptographic failures are kept apart from policy failures (as
 * sigstore-js does), so "the signature is broken" never reads like "the signature is from someone else".
 * Only `src/cli/run.ts` turns codes into exit codes ({@linkcode exitCodeFor}).
 *
 * @module
 */

/** Every stable error code. Adding one forces {@linkcode exitCodeFor} to handle it. */
export type ErrorCode =
  // usage and configuration
  | "USAGE"
  | "REFERENCE_INVALID"
  | "CONFIG_INVALID"
  // registry and network
  | "REGISTRY_UNREACHABLE"
  | "REGISTRY_HTTP"
  | "REGISTRY_NOT_FOUND"
  | "REGISTRY_UNAUTHORIZED"
  | "REGISTRY_DENIED"
  | "REGISTRY_RATE_LIMITED"
  | "REGISTRY_PROTOCOL"
  | "REGISTRY_INSECURE"
  | "REGISTRY_REDIRECT"
  | "REGISTRY_RETRY_EXHAUSTED"
  | "REGISTRY_TIMEOUT"
  | "CREDENTIALS_INVALID"
  | "MANIFEST_INVALID"
  | "PLATFORM_NOT_FOUND"
  | "PLATFORM_AMBIGUOUS"
  // content integrity (bytes that do not match their descriptor)
  | "DIGEST_MISMATCH"
  | "SIZE_MISMATCH"
  | "SIZE_LIMIT_EXCEEDED"
  | "SHORT_READ"
  // cryptographic verification
  | "SIGNATURE_INVALID"
  | "SIGNATURE_MISSING"
  | "PAYLOAD_INVALID"
  | "KEY_INVALID"
  | "TLOG_MISSING"
  | "TLOG_SET_INVALID"
  | "TLOG_INCLUSION_INVALID"
  | "TLOG_BODY_MISMATCH"
  | "TLOG_UNKNOWN_LOG"
  | "BUNDLE_INVALID"
  | "CERTIFICATE_INVALID"
  | "TRUST_ROOT_INVALID"
  | "ATTESTATION_INVALID"
  // TUF (trust-root update): a repository that fails TUF's checks (10) or cannot be reached (12)
  | "TUF_VERIFICATION_FAILED"
  | "TUF_RESPONSE_TOO_LARGE"
  | "TUF_UNREACHABLE"
  | "TUF_HTTP"
  // policy (cryptography fine, but not what we trust)
  | "POLICY_DIGEST_MISMATCH"
  | "POLICY_REFERENCE_MISMATCH"
  | "POLICY_IDENTITY_MISMATCH"
  | "POLICY_PREDICATE_MISMATCH"
  | "POLICY_REJECTED"
  // state
  | "ROLLBACK"
  | "LOCK_HELD"
  | "STORE_INVALID"
  /**
   * The data directory (or something in it) is not what the tool uses: `--data-dir` names a file, a
   * directory cannot be written, or a symlink, FIFO or other special file stands where the tool keeps
   * its own regular files and directories. Exit 2: the user must fix or change the data directory.
   */
  | "DATA_DIR_INVALID"
  /**
   * Deno refused an operation the run needs (a file, a variable, a host or a program outside the
   * `--allow-*` flags it was started with). Exit 2: start it with the permission (README, "Permissions").
   */
  | "PERMISSION_DENIED"
  // archives
  | "ARCHIVE_INVALID"
  // container runtime
  | "RUNTIME_NOT_FOUND"
  | "RUNTIME_FAILED"
  | "RUNTIME_DIGEST_MISMATCH"
  // everything else
  | "DISK_FULL"
  | "IO"
  | "UNSUPPORTED"
  | "NOT_IMPLEMENTED"
  | "INTERNAL";

/** Options of {@linkcode DangerzoneError}. */
export interface DangerzoneErrorOptions {
  /** The error this one wraps; always set it when wrapping. */
  cause?: unknown;
  /** What the user can do about it, appended to the one-line message. */
  hint?: string;
}

/**
 * The single error class. `message` is one line a user can act on; it never holds a token,
 * an `Authorization` header or a signed URL.
 *
 * @example
 * ```ts
 * import { DangerzoneError } from "./errors.ts";
 * throw new DangerzoneError("DIGEST_MISMATCH", "blob sha256:ab.. does not match its digest");
 * ```
 */
export class DangerzoneError extends Error {
  /** The stable code. */
  readonly code: ErrorCode;
  /** The remedy shown after the message, if any. */
  readonly hint: string | undefined;

  /** Creates an error with a stable code and a one-line message. */
  constructor(code: ErrorCode, message: string, options: DangerzoneErrorOptions = {}) {
    super(oneLine(message), options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "DangerzoneError";
    this.code = code;
    this.hint = options.hint === undefined ? undefined : oneLine(options.hint);
  }
}

/** True when `err` is a {@linkcode DangerzoneError}, optionally with one of `codes`. */
export function isDangerzoneError(err: unknown, ...codes: ErrorCode[]): err is DangerzoneError {
  return err instanceof DangerzoneError && (codes.length === 0 || codes.includes(err.code));
}

/** The exit codes of the command contract (DESIGN.md). */
export const ExitCode = {
  OK: 0,
  FAILURE: 1,
  USAGE: 2,
  UPDATE_AVAILABLE: 3,
  VERIFICATION: 10,
  ROLLBACK: 11,
  REGISTRY: 12,
  ARCHIVE: 13,
  RUNTIME: 14,
} as const;

/** One of the values of {@linkcode ExitCode}. */
export type ExitCodeValue = typeof ExitCode[keyof typeof ExitCode];

/**
 * Maps an error code to its process exit code. Exhaustive: a new code does not type-check
 * until it is mapped here.
 */
export function exitCodeFor(code: ErrorCode): ExitCodeValue {
  switch (code) {
    case "USAGE":
    case "REFERENCE_INVALID":
    case "CONFIG_INVALID":
    case "DATA_DIR_INVALID":
    case "PERMISSION_DENIED":
    case "STORE_INVALID": // a damaged state or store file: the user must restore or remove it
      return ExitCode.USAGE;
    case "REGISTRY_UNREACHABLE":
    case "REGISTRY_HTTP":
    case "REGISTRY_NOT_FOUND":
    case "REGISTRY_UNAUTHORIZED":
    case "REGISTRY_DENIED":
    case "REGISTRY_RATE_LIMITED":
    case "REGISTRY_PROTOCOL":
    case "REGISTRY_INSECURE":
    case "REGISTRY_REDIRECT":
    case "REGISTRY_RETRY_EXHAUSTED":
    case "REGISTRY_TIMEOUT":
    case "CREDENTIALS_INVALID":
    case "MANIFEST_INVALID":
    case "PLATFORM_NOT_FOUND":
    case "PLATFORM_AMBIGUOUS":
    case "DIGEST_MISMATCH":
    case "SIZE_MISMATCH":
    case "SIZE_LIMIT_EXCEEDED":
    case "SHORT_READ":
    case "TUF_UNREACHABLE":
    case "TUF_HTTP":
      return ExitCode.REGISTRY;
    case "SIGNATURE_INVALID":
    case "SIGNATURE_MISSING":
    case "PAYLOAD_INVALID":
    case "KEY_INVALID":
    case "TLOG_MISSING":
    case "TLOG_SET_INVALID":
    case "TLOG_INCLUSION_INVALID":
    case "TLOG_BODY_MISMATCH":
    case "TLOG_UNKNOWN_LOG":
    case "BUNDLE_INVALID":
    case "CERTIFICATE_INVALID":
    case "TRUST_ROOT_INVALID":
    case "ATTESTATION_INVALID":
    case "TUF_VERIFICATION_FAILED":
    case "TUF_RESPONSE_TOO_LARGE":
    case "POLICY_DIGEST_MISMATCH":
    case "POLICY_REFERENCE_MISMATCH":
    case "POLICY_IDENTITY_MISMATCH":
    case "POLICY_PREDICATE_MISMATCH":
    case "POLICY_REJECTED":
      return ExitCode.VERIFICATION;
    case "ROLLBACK":
      return ExitCode.ROLLBACK;
    case "ARCHIVE_INVALID":
      return ExitCode.ARCHIVE;
    case "RUNTIME_NOT_FOUND":
    case "RUNTIME_FAILED":
    case "RUNTIME_DIGEST_MISMATCH":
      return ExitCode.RUNTIME;
    case "LOCK_HELD":
    case "DISK_FULL":
    case "IO":
    case "UNSUPPORTED":
    case "NOT_IMPLEMENTED":
    case "INTERNAL":
      return ExitCode.FAILURE;
    default: {
      const unreachable: never = code;
      return unreachable;
    }
  }
}

/** Collapses whitespace so a message always prints as one line. */
function oneLine(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}
