/**
 * Shared setup of the archive tests: a signed image in a real registry, an isolated podman, and helpers
 * to read an archive's entries and to snapshot the runtime's images and the signature store (to assert
 * that a refused archive changed neither).
 *
 * @module
 */
import { join } from "node:path";
import { PodmanRuntime } from "../../src/runtime/podman.ts";
import type { ContainerRuntime } from "../../src/runtime/runtime.ts";
import type { UpdateContext } from "../../src/update/context.ts";
import { type RunningPodman, startPodman } from "../_helpers/podman.ts";
import { makeTempDir, type TempDir } from "../_helpers/process.ts";
import type { BuiltImage } from "../_helpers/images.ts";
import { type SignedRegistry, startSignedRegistry } from "./_fixture.ts";

/** Repository used by the archive tests. */
export const REPO = "sandbox/dz";

/** A signed single-platform image in a registry, a podman, and a data dir. */
export interface ArchiveWorld extends AsyncDisposable {
  sr: SignedRegistry;
  pm: RunningPodman;
  tmp: TempDir;
  img: BuiltImage;
  /** `HOST/REPO:latest`. */
  image: string;
  /** A fresh data directory under tmp. */
  dataDir(name: string): Promise<string>;
  /** A library context on `dataDir` whose runtime is this podman. */
  context(dataDir: string, extra?: Partial<UpdateContext>): Promise<UpdateContext & Disposable>;
  /** Environment for CLI runs (registry credentials and podman configuration). */
  env: Record<string, string>;
}

/** Starts a registry with a signed busybox image (log index `logIndex`) and an isolated podman. */
export async function startArchiveWorld(
  options: { logIndex?: number; text?: string } = {},
): Promise<ArchiveWorld> {
  const sr = await startSignedRegistry("plain");
  const pm = await startPodman();
  const tmp = makeTempDir("archive");
  const img = await sr.pushBusybox(REPO, "latest", options.text ?? "archive v1");
  await sr.sign(img.digest, { repository: REPO, logIndex: options.logIndex ?? 100 });
  const image = `${sr.reg.host}/${REPO}:latest`;
  let n = 0;
  const runtime: ContainerRuntime = new PodmanRuntime({ env: pm.env });
  return {
    sr,
    pm,
    tmp,
    img,
    image,
    env: { ...sr.env, ...pm.env },
    async dataDir(name: string) {
      const dir = join(tmp.path, `data-${name}-${n++}`);
      await Deno.mkdir(dir, { recursive: true });
      return dir;
    },
    context(dataDir, extra = {}) {
      return sr.context(image, dataDir, { runtime: () => Promise.resolve(runtime), ...extra });
    },
    async [Symbol.asyncDispose]() {
      await pm.stop();
      await sr[Symbol.asyncDispose]();
      await tmp.remove();
    },
  };
}

/** Every image the podman holds: ID with sorted names and digests (a snapshot to compare). */
export async function imageSnapshot(pm: RunningPodman): Promise<string[]> {
  const r = await pm.podman(["images", "-a", "--format", "{{.ID}} {{.Names}} {{.Digest}}"]);
  return r.stdout.trim().split("\n").filter((l) => l !== "").sort();
}

/** Every file under `dir` (relative path, size, sha256 of content): a snapshot of the store. */
export async function treeSnapshot(dir: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(rel: string): Promise<void> {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(join(dir, rel)));
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return;
      throw err;
    }
    for (const e of entries) {
      const path = rel === "" ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory) {
        out.push(`${path}/`);
        await walk(path);
      } else {
        const bytes = await Deno.readFile(join(dir, path));
        const h = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
        out.push(`${path} ${bytes.length} ${Array.from(h, (b) => b.toString(16).padStart(2, "0")).join("")}`);
      }
    }
  }
  await walk("");
  return out.sort();
}
