// deno-lint-ignore-file no-console
/**
 * Benchmark of the archive tar path: write and read an OCI layout tar holding one blob
 * (default 256 MiB), against GNU `tar` and `openssl dgst -sha256` on the same file, with the
 * peak RSS of each phase (each phase runs in its own process).
 *
 *   deno run -A scripts/bench-tar.ts [--mib 256]
 *
 * @module
 */
import { OciLayoutDir } from "../src/layout/dir.ts";
import { OciArchiveWriter } from "../src/layout/tar_writer.ts";
import { readOciArchive } from "../src/layout/tar_reader.ts";
import { parseArchiveIndex } from "../src/layout/archive_index.ts";
import { sha256Digest } from "../src/oci/digest.ts";
import type { Descriptor } from "../src/oci/descriptor.ts";
import { createHash } from "node:crypto";

const enc = new TextEncoder();
const REPEATS = 3;

function peakRssMiB(): number {
  const status = Deno.readTextFileSync("/proc/self/status");
  const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? "0");
  return Math.round(kb / 1024);
}

async function timed(cmd: string, args: string[]): Promise<number> {
  const t = performance.now();
  const out = await new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).output();
  if (!out.success) throw new Error(`${cmd} failed: ${new TextDecoder().decode(out.stderr)}`);
  return performance.now() - t;
}

/** Metadata for a one-layer image whose layer is the blob. */
async function metadata(layer: Descriptor) {
  const config = enc.encode(
    JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] } }),
  );
  const configDesc = {
    mediaType: "application/vnd.oci.image.config.v1+json",
    digest: await sha256Digest(config),
    size: config.length,
  };
  const manifest = enc.encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: configDesc,
    layers: [layer],
  }));
  const manifestDesc = {
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    digest: await sha256Digest(manifest),
    size: manifest.length,
  };
  const image = { ...manifestDesc, annotations: { kind: "dev.cosignproject.cosign/image" } };
  const index = enc.encode(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [image],
    }),
  );
  return { config, configDesc, manifest, manifestDesc, index };
}

async function phase(name: string, work: string): Promise<void> {
  const layer: Descriptor = JSON.parse(await Deno.readTextFile(`${work}/layer.json`));
  const t = performance.now();
  if (name === "write") {
    const src = await OciLayoutDir.open(`${work}/src`);
    const m = await metadata(layer);
    const writer = await OciArchiveWriter.create(`${work}/archive.tar`);
    await writer.putBlob(layer, await src.getBlob(layer));
    await writer.putBlob(m.configDesc, new Blob([m.config]).stream());
    await writer.putManifest(m.manifestDesc, m.manifest);
    await writer.finish({ indexJson: m.index, dangerzoneJson: m.index });
  } else if (name === "read") {
    await Deno.remove(`${work}/staging`, { recursive: true }).catch(() => {});
    const staging = await OciLayoutDir.create(`${work}/staging`);
    using file = await Deno.open(`${work}/archive.tar`);
    const c = await readOciArchive(file, staging);
    parseArchiveIndex({
      untrustedIndexJson: c.untrustedIndexJson,
      untrustedDangerzoneJson: c.untrustedDangerzoneJson,
    });
  } else if (name === "hash") {
    using file = await Deno.open(`${work}/blob`);
    const h = createHash("sha256");
    const buf = new Uint8Array(1 << 20);
    while (true) {
      const n = await file.read(buf);
      if (n === null) break;
      h.update(buf.subarray(0, n));
    }
    h.digest("hex");
  }
  console.log(JSON.stringify({ ms: performance.now() - t, rssMiB: peakRssMiB() }));
}

/** Runs a phase `REPEATS` times in fresh processes; the median time and the largest peak RSS. */
async function child(name: string, work: string): Promise<{ ms: number; rssMiB: number }> {
  const runs: { ms: number; rssMiB: number }[] = [];
  for (let i = 0; i < REPEATS; i++) runs.push(await childOnce(name, work));
  runs.sort((a, b) => a.ms - b.ms);
  return { ms: runs[Math.floor(runs.length / 2)]?.ms ?? 0, rssMiB: Math.max(...runs.map((r) => r.rssMiB)) };
}

async function median(cmd: string, args: string[]): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < REPEATS; i++) times.push(await timed(cmd, args));
  return times.sort((a, b) => a - b)[Math.floor(times.length / 2)] ?? 0;
}

async function childOnce(name: string, work: string): Promise<{ ms: number; rssMiB: number }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, "--phase", name, "--work", work],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`phase ${name} failed`);
  return JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").pop() ?? "{}");
}

async function main(): Promise<void> {
  const args = Deno.args;
  const phaseIdx = args.indexOf("--phase");
  if (phaseIdx !== -1) {
    await phase(args[phaseIdx + 1] ?? "", args[args.indexOf("--work") + 1] ?? "");
    return;
  }
  const mib = Number(args[args.indexOf("--mib") + 1] ?? "256") || 256;
  const work = await Deno.makeTempDir({ prefix: "dz-bench-tar-" });
  try {
    // A random blob (incompressible, like a gzip layer), written once into a source layout.
    const size = mib * 1024 * 1024;
    {
      using f = await Deno.open(`${work}/blob`, { write: true, create: true });
      const chunk = new Uint8Array(1 << 20);
      const h = createHash("sha256");
      for (let i = 0; i < mib; i++) {
        for (let o = 0; o < chunk.length; o += 65536) crypto.getRandomValues(chunk.subarray(o, o + 65536));
        h.update(chunk);
        await f.write(chunk);
      }
      const layer = {
        mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
        digest: `sha256:${h.digest("hex")}`,
        size,
      };
      await Deno.writeTextFile(`${work}/layer.json`, JSON.stringify(layer));
      const src = await OciLayoutDir.create(`${work}/src`);
      await Deno.link(`${work}/blob`, src.blobPath(layer.digest as Descriptor["digest"]));
    }
    const rate = (ms: number) => `${(size / 1024 / 1024 / (ms / 1000)).toFixed(0)} MiB/s`;
    const row = (label: string, ms: number, rss?: number) =>
      console.log(
        `${label.padEnd(50)} ${ms.toFixed(0).padStart(6)} ms  ${rate(ms).padStart(11)}${
          rss === undefined ? "" : `  peak RSS ${rss} MiB`
        }`,
      );
    console.log(
      `blob: ${mib} MiB random; median of ${REPEATS} runs, each in its own process; page cache warm`,
    );
    // Warm the page cache so every contender reads from memory.
    await timed("cat", [`${work}/blob`]);
    row("openssl dgst -sha256 blob", await median("openssl", ["dgst", "-sha256", `${work}/blob`]));
    const hash = await child("hash", work);
    row("node:crypto sha256 (1 MiB reads) blob", hash.ms, hash.rssMiB);
    row(
      "GNU tar -cf (blob -> tar, no fsync)",
      await median("tar", ["-cf", `${work}/gnu.tar`, "-C", work, "blob"]),
    );
    const write = await child("write", work);
    row("OciArchiveWriter (layout -> tar, verified, fsync)", write.ms, write.rssMiB);
    await Deno.mkdir(`${work}/gnu-x`);
    row(
      "GNU tar -xf (tar -> dir, no fsync)",
      await median("tar", ["-xf", `${work}/archive.tar`, "-C", `${work}/gnu-x`]),
    );
    row(
      "GNU tar -xf + sync -f (tar -> dir)",
      await median("sh", [
        "-c",
        'tar -xf "$1" -C "$2" && sync -f "$2/blobs"',
        "sh",
        `${work}/archive.tar`,
        `${work}/gnu-x`,
      ]),
    );
    const read = await child("read", work);
    row("readOciArchive (tar -> staging, verified, fsync)", read.ms, read.rssMiB);
    row(
      "openssl dgst -sha256 archive.tar",
      await median("openssl", ["dgst", "-sha256", `${work}/archive.tar`]),
    );
  } finally {
    await Deno.remove(work, { recursive: true });
  }
}

await main();
