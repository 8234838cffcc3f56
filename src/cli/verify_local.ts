/**
 * `verify-local [IMAGE]`: the image the runtime holds (default: the `--image` name) has stored
 * signatures that verify with the trusted key. Kept fast (it runs before every document conversion):
 * loads no registry code and no Sigstore bundle library unless bundles are stored. Exit 0 verified, 10 naming the problem (no such image, no
 * stored signatures, signatures for another digest, signatures that do not verify), 14 runtime failure.
 *
 * @module
 */
import { ExitCode, type ExitCodeValue } from "../errors.ts";
import { askRuntime, verifyLocalImage } from "../update/verify_local.ts";
import { selectRuntime } from "../runtime/detect.ts";
import { buildLocalContext, imageFrom, lazyRuntime } from "./_context.ts";
import type { CommonOptions } from "./common.ts";
import type { Output } from "./output.ts";

/**
 * The `verify-local` action.
 *
 * @example
 * ```ts ignore
 * const code = await verifyLocalCommand(["ghcr.io/freedomofpress/dangerzone/v1"], {}, out);
 * ```
 */
export async function verifyLocalCommand(
  args: string[],
  options: CommonOptions & Record<string, unknown>,
  out: Output,
): Promise<ExitCodeValue> {
  // Runs before every document conversion: no registry client, and one runtime call (no `version` probe
  // when the runtime is known), asked first so that the keys and trust are read while the runtime
  // answers; see scripts/bench-verify-local.
  const runtime = lazyRuntime(options, selectRuntime);
  const image = args[0] ?? imageFrom(options).format();
  const held = askRuntime(runtime(), image);
  held.catch(() => {}); // awaited below (a runtime that fails fast must not be an unhandled rejection)
  const ctx = await buildLocalContext(options, out, { runtime }).catch(async (err: unknown) => {
    await held.catch(() => {}); // a context error (bad key...) is reported once the runtime is done
    throw err;
  });
  const local = await verifyLocalImage(ctx, { image, held });
  const key = ctx.publicKey.fileSha256 ?? ctx.publicKey.spkiSha256;
  out.result({
    ok: true,
    image: local.image,
    runtime: local.runtime,
    runtimeDigests: local.runtimeDigests,
    digest: local.digest,
    expectedReference: local.expectedReference,
    key: {
      fileSha256: ctx.publicKey.fileSha256,
      spkiSha256: ctx.publicKey.spkiSha256,
      algorithm: ctx.publicKey.algorithm,
    },
    verified: local.verified.length,
    stored: local.stored,
    signatures: local.verified.map((v) => ({
      logId: v.logId,
      logIndex: v.logIndex,
      integratedTime: v.integratedTime,
      dockerReference: v.dockerReference,
    })),
  });
  out.line(
    `verified: ${local.image} (${local.runtime}, ${local.digest}) has ${local.verified.length} of ${local.stored} ` +
      `stored signature(s) verifying with key sha256:${key.slice(0, 12)}…`,
  );
  return ExitCode.OK;
}
