/**
 * Private: the GitHub Actions claims Fulcio writes into a signing certificate (OIDs
 * `1.3.6.1.4.1.57264.1.*`, see Fulcio's `docs/oid-info.md`). Older certificates carry the deprecated
 * raw-string extensions (1.1-1.6), newer ones also the DER `UTF8String` extensions (1.8-1.22); as in
 * slsa-verifier's `GetWorkflowInfoFromCertificate`, where both forms of a claim exist they must agree.
 *
 * Read these only from a certificate that already verified against the trusted root.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { X509Certificate } from "@sigstore/core";
import { DangerzoneError } from "../../errors.ts";
import { DerFormatError, readDer } from "../crypto/_asn1.ts";

const OID = "1.3.6.1.4.1.57264.1.";

/** The Fulcio claims of a GitHub Actions certificate, each undefined when the certificate lacks it. */
export interface FulcioGithubClaims {
  /** The SAN URI: the signing workflow, `https://github.com/OWNER/REPO/PATH@REF`. */
  readonly san: string;
  /** OIDC issuer (1.1 / 1.8). */
  readonly issuer: string | undefined;
  /** Event that triggered the build (1.2 / 1.20). */
  readonly trigger: string | undefined;
  /** Source commit (1.3 / 1.13, and 1.19 build config digest). */
  readonly sourceDigest: string | undefined;
  /** Source repository `OWNER/REPO` (1.5, or 1.12 without `https://github.com/`). */
  readonly sourceRepository: string | undefined;
  /** Source ref, e.g. `refs/heads/main` (1.6 / 1.14). */
  readonly sourceRef: string | undefined;
  /** Build config URI `https://github.com/OWNER/REPO/PATH@REF` (1.18). */
  readonly buildConfigUri: string | undefined;
}

/** Reads the claims from a certificate's DER bytes; inconsistent claims are `CERTIFICATE_INVALID`. */
export function readFulcioGithubClaims(der: Uint8Array): FulcioGithubClaims {
  let cert: X509Certificate;
  try {
    cert = X509Certificate.parse(Buffer.from(der));
  } catch (err) {
    throw invalid("the signing certificate does not parse", err);
  }
  const san = cert.extSubjectAltName?.uri;
  if (san === undefined || san === "") throw invalid("the signing certificate has no URI identity");

  const raw = (n: number) => rawExtension(cert, n);
  const utf8 = (n: number) => utf8Extension(cert, n);
  const issuer = agree("issuer", raw(1), utf8(8));
  const trigger = agree("build trigger", raw(2), utf8(20));
  const sourceDigest = agree("source digest", agree("source digest", raw(3), utf8(13)), utf8(19));
  const sourceRef = agree("source ref", raw(6), utf8(14));
  const uri = utf8(12);
  let fromUri: string | undefined;
  if (uri !== undefined) {
    if (!uri.startsWith("https://github.com/")) {
      throw invalid(`the source repository URI '${uri.slice(0, 120)}' is not on github.com`);
    }
    fromUri = uri.slice("https://github.com/".length);
  }
  const sourceRepository = agree("source repository", raw(5), fromUri);
  return { san, issuer, trigger, sourceDigest, sourceRepository, sourceRef, buildConfigUri: utf8(18) };
}

function rawExtension(cert: X509Certificate, n: number): string | undefined {
  const ext = cert.extension(`${OID}${n}`);
  if (ext === undefined) return undefined;
  return decode(new Uint8Array(ext.value), `${OID}${n}`);
}

function utf8Extension(cert: X509Certificate, n: number): string | undefined {
  const ext = cert.extension(`${OID}${n}`);
  if (ext === undefined) return undefined;
  const bytes = new Uint8Array(ext.value);
  try {
    const el = readDer(bytes, 0);
    if (el.tag !== 0x0c || el.end !== bytes.length) throw new DerFormatError("not exactly one UTF8String");
    return decode(bytes.subarray(el.start, el.end), `${OID}${n}`);
  } catch (err) {
    throw invalid(`certificate extension ${OID}${n} is not a DER UTF8String`, err);
  }
}

function decode(bytes: Uint8Array, oid: string): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (err) {
    throw invalid(`certificate extension ${oid} is not UTF-8`, err);
  }
}

function agree(what: string, a: string | undefined, b: string | undefined): string | undefined {
  if (a !== undefined && b !== undefined && a !== b) {
    throw invalid(`the certificate's ${what} claims disagree ('${a.slice(0, 80)}' vs '${b.slice(0, 80)}')`);
  }
  return a ?? b;
}

function invalid(message: string, cause?: unknown): DangerzoneError {
  return new DangerzoneError("CERTIFICATE_INVALID", message, cause === undefined ? {} : { cause });
}
