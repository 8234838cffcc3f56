/** The Deno `node:crypto.verify` workaround: needed on this Deno, works, and sigstore fails without it. */
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { fileURLToPath } from "node:url";
import { nodeCryptoVerifyNeedsPatch } from "../../../src/sigstore/crypto/node_crypto_patch.ts";
import { CASES_DIR, PRODUCTION_ROOT_FILE } from "./_conformance_cases.ts";

const CONFIG = fileURLToPath(new URL("../../../deno.json", import.meta.url));

Deno.test("nodeCryptoVerifyNeedsPatch() reports the bug on Deno 2.9.6", () => {
  if (Deno.version.deno === "2.9.6") assert.equal(nodeCryptoVerifyNeedsPatch(), true);
  else assert.equal(typeof nodeCryptoVerifyNeedsPatch(), "boolean");
});

Deno.test("patched node:crypto.verify() uses SHA-256 for EC and RSA keys with a null algorithm", () => {
  const data = new TextEncoder().encode("payload");
  for (
    const pair of [
      crypto.generateKeyPairSync("ec", { namedCurve: "P-256" }),
      crypto.generateKeyPairSync("rsa", { modulusLength: 2048 }),
    ]
  ) {
    const sig = crypto.sign("sha256", data, pair.privateKey);
    assert.equal(crypto.verify(null, data, pair.publicKey, sig), true);
    assert.equal(crypto.verify(null, new TextEncoder().encode("payloaD"), pair.publicKey, sig), false);
    const pem = pair.publicKey.export({ format: "pem", type: "spki" });
    assert.equal(crypto.verify(null, data, pem, sig), true);
  }
  const ed = crypto.generateKeyPairSync("ed25519");
  assert.equal(crypto.verify(null, data, ed.publicKey, crypto.sign(null, data, ed.privateKey)), true);
});

/** Runs a script that verifies a conformance bundle with the bare library; `patched` imports the patch first. */
async function runLibrary(patched: boolean, bundleCase: string, tamper: boolean): Promise<string> {
  const dir = await Deno.makeTempDir();
  try {
    const patch = fileURLToPath(
      new URL("../../../src/sigstore/crypto/node_crypto_patch.ts", import.meta.url),
    );
    const script = `${patched ? `import ${JSON.stringify(patch)};\n` : ""}
import { Buffer } from "node:buffer";
import { bundleFromJSON } from "@sigstore/bundle";
import { TrustedRoot } from "@sigstore/protobuf-specs";
import { toSignedEntity, toTrustMaterial, Verifier } from "@sigstore/verify";
const json = JSON.parse(Deno.readTextFileSync(${
      JSON.stringify(`${CASES_DIR}${bundleCase}/bundle.sigstore.json`)
    }));
let artifact = Deno.readFileSync(${JSON.stringify(`${CASES_DIR}../a.txt`)});
if (${tamper}) artifact = new TextEncoder().encode("tampered");
const root = TrustedRoot.fromJSON(JSON.parse(Deno.readTextFileSync(${JSON.stringify(PRODUCTION_ROOT_FILE)})));
try {
  new Verifier(toTrustMaterial(root)).verify(toSignedEntity(bundleFromJSON(json), Buffer.from(artifact)));
  console.log("VERIFIED");
} catch (e) { console.log("REJECTED " + e.code + " " + e.message); }
`;
    await Deno.writeTextFile(`${dir}/probe.ts`, script);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--config", CONFIG, `${dir}/probe.ts`],
      stdout: "piped",
      stderr: "piped",
    }).output();
    return new TextDecoder().decode(out.stdout).trim() + new TextDecoder().decode(out.stderr).trim();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("node_crypto_patch: @sigstore/verify rejects a valid bundle without it, verifies it with it", async () => {
  const without = await runLibrary(false, "happy-path-v0.3", false);
  if (Deno.version.deno === "2.9.6") assert.match(without, /^REJECTED /);
  assert.equal(await runLibrary(true, "happy-path-v0.3", false), "VERIFIED");
  assert.match(await runLibrary(true, "happy-path-v0.3", true), /^REJECTED SIGNATURE_ERROR/);
  assert.match(await runLibrary(true, "signature-mismatch_fail", false), /^REJECTED /);
});
