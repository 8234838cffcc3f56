/**
 * A test certificate authority and a server certificate signed by it, made with openssl.
 *
 * Deno (rustls) rejects a self-signed certificate used as a server certificate ("CaUsedAsEndEntity"), so
 * this makes a CA (`CA:TRUE`, keyCertSign) and a leaf (`CA:FALSE`, serverAuth, SAN `IP:127.0.0.1`,
 * `DNS:localhost`) signed by it.
 *
 * @module
 */
import { join } from "node:path";
import { runCommand } from "./process.ts";

/** Files and PEM text of a test CA and its server certificate. */
export interface TestCertificates {
  /** The CA certificate (PEM), for `Deno.createHttpClient({ caCerts })`. */
  caCertPem: string;
  /** Path of the CA certificate. */
  caCertFile: string;
  /** Path of the server certificate (leaf only). */
  certFile: string;
  /** Path of the server's private key. */
  keyFile: string;
  /**
   * A containers/image certificate dir holding only `ca.crt` (for `skopeo --dest-cert-dir`,
   * `podman --cert-dir`); it holds no keys, because `*.key` there would be read as a client certificate.
   */
  certDir: string;
}

/** Options of {@linkcode createTestCertificates}. */
export interface TestCertificateOptions {
  /** Subject alternative names of the leaf (default `IP:127.0.0.1`, `DNS:localhost`). */
  subjectAltNames?: string[];
  /** Validity in days (default 2). */
  days?: number;
}

/**
 * Writes a fresh CA and a server certificate for 127.0.0.1 and localhost into `dir`.
 *
 * @example
 * ```ts
 * import { createTestCertificates } from "./tls.ts";
 * const certs = await createTestCertificates(await Deno.makeTempDir());
 * ```
 */
export async function createTestCertificates(
  dir: string,
  options: TestCertificateOptions = {},
): Promise<TestCertificates> {
  const days = String(options.days ?? 2);
  const san = (options.subjectAltNames ?? ["IP:127.0.0.1", "DNS:localhost"]).join(",");
  const caKey = join(dir, "ca.key");
  const caCertFile = join(dir, "ca.crt");
  const keyFile = join(dir, "server.key");
  const csr = join(dir, "server.csr");
  const certFile = join(dir, "server.crt");
  const ext = join(dir, "leaf.ext");
  const certDir = join(dir, "certs.d");
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await runCommand("openssl", [
    "req",
    "-x509",
    ...ec,
    "-keyout",
    caKey,
    "-out",
    caCertFile,
    "-days",
    days,
    "-subj",
    "/CN=dangerzone-image test CA",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  await runCommand("openssl", [
    "req",
    "-new",
    ...ec,
    "-keyout",
    keyFile,
    "-out",
    csr,
    "-subj",
    "/CN=127.0.0.1",
  ]);
  await Deno.writeTextFile(
    ext,
    "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n" +
      `subjectAltName=${san}\n`,
  );
  await runCommand("openssl", [
    "x509",
    "-req",
    "-in",
    csr,
    "-CA",
    caCertFile,
    "-CAkey",
    caKey,
    "-CAcreateserial",
    "-days",
    days,
    "-extfile",
    ext,
    "-out",
    certFile,
  ]);
  await Deno.mkdir(certDir, { recursive: true });
  await Deno.copyFile(caCertFile, join(certDir, "ca.crt"));
  const caCertPem = await Deno.readTextFile(caCertFile);
  return { caCertPem, caCertFile, certFile, keyFile, certDir };
}
