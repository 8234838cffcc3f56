/**
 * The vectors in tests/testdata/vectors/ are the upstream files, byte for byte: every row of
 * PROVENANCE.tsv is re-hashed (size and sha256), and every file in the folder has a row. A changed,
 * truncated or unlisted vector fails here, so the provenance in tests/testdata/PROVENANCE.md stays true.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";

const VECTORS = fileURLToPath(new URL("./testdata/vectors/", import.meta.url));
/** Files that describe the folder rather than come from an origin repository. */
const META_FILES = new Set(["PROVENANCE.tsv", "README.md", "EXPECTATIONS.json"]);
const HEADER = "local_path\torigin_repo\torigin_path\torigin_commit\tbytes\tsha256";

interface ProvenanceRow {
  localPath: string;
  originRepo: string;
  bytes: number;
  sha256: string;
}

function parseProvenance(text: string): ProvenanceRow[] {
  const [header, ...lines] = text.trimEnd().split("\n");
  assert.equal(header, HEADER);
  return lines.map((line) => {
    const [localPath, originRepo, , , bytes, sha256, ...rest] = line.split("\t");
    assert.equal(rest.length, 0, `extra columns: ${line}`);
    assert.ok(localPath && originRepo && bytes && sha256, `short row: ${line}`);
    assert.match(sha256, /^[0-9a-f]{64}$/);
    assert.match(bytes, /^[0-9]+$/);
    return { localPath, originRepo, bytes: Number(bytes), sha256 };
  });
}

/** Streams one file through SHA-256 (never the whole file in memory). */
async function hashFile(path: string): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash("sha256");
  let bytes = 0;
  using file = await Deno.open(path);
  for await (const chunk of file.readable.values({ preventCancel: true })) {
    hash.update(chunk);
    bytes += chunk.byteLength;
  }
  return { bytes, sha256: hash.digest("hex") };
}

async function listFiles(root: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(`${root}${prefix}`)) {
    const rel = `${prefix}${entry.name}`;
    if (entry.isDirectory) out.push(...await listFiles(root, `${rel}/`));
    else out.push(rel);
  }
  return out;
}

/** Every way the folder at `root` departs from its PROVENANCE.tsv, one line each (empty: none). */
async function provenanceProblems(root: string): Promise<string[]> {
  const rows = parseProvenance(await Deno.readTextFile(`${root}PROVENANCE.tsv`));
  const problems: string[] = [];
  const listed = new Set<string>();
  for (const row of rows) {
    if (listed.has(row.localPath)) problems.push(`${row.localPath}: listed twice`);
    listed.add(row.localPath);
    let actual: { bytes: number; sha256: string };
    try {
      actual = await hashFile(`${root}${row.localPath}`);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
      problems.push(`${row.localPath}: missing`);
      continue;
    }
    if (actual.bytes !== row.bytes) {
      problems.push(`${row.localPath}: ${actual.bytes} bytes, expected ${row.bytes}`);
    }
    if (actual.sha256 !== row.sha256) problems.push(`${row.localPath}: sha256 ${actual.sha256} differs`);
  }
  for (const file of await listFiles(root)) {
    if (!listed.has(file) && !META_FILES.has(file)) problems.push(`${file}: not in PROVENANCE.tsv`);
  }
  return problems.sort();
}

/** A writable copy of the vectors folder (only its small files change in the tests below). */
async function copyOfVectors(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "dz-vectors-" });
  for (const file of await listFiles(VECTORS)) {
    const target = `${dir}/${file}`;
    await Deno.mkdir(target.slice(0, target.lastIndexOf("/")), { recursive: true });
    await Deno.copyFile(`${VECTORS}${file}`, target);
  }
  return `${dir}/`;
}

const SOME_VECTOR = "dangerzone/share/rekor.pub";

Deno.test("tests/testdata/vectors: every file matches its PROVENANCE.tsv row (bytes and sha256)", async () => {
  assert.deepEqual(await provenanceProblems(VECTORS), []);
});

Deno.test("tests/testdata/vectors: every origin repository has a license entry in PROVENANCE.md", async () => {
  const rows = parseProvenance(await Deno.readTextFile(`${VECTORS}PROVENANCE.tsv`));
  const doc = await Deno.readTextFile(new URL("./testdata/PROVENANCE.md", import.meta.url));
  const tableRows = doc.split("\n").filter((l) => l.startsWith("| `")).map((l) =>
    l.split("|").slice(1, -1).map((cell) => cell.trim())
  );
  for (const repo of new Set(rows.map((r) => r.originRepo))) {
    const row = tableRows.find((cells) => cells[0] === `\`${repo}\``);
    assert.ok(row, `${repo} has no row in the license table`);
    assert.equal(row.length, 4, repo);
    assert.match(row[3] ?? "", /[A-Za-z]{3}/, `${repo} has no license entry`);
  }
});

Deno.test("provenance check: a changed byte, a truncated file, a missing and an unlisted file all fail", async () => {
  const root = await copyOfVectors();
  try {
    assert.deepEqual(await provenanceProblems(root), []);
    const bytes = await Deno.readFile(`${root}${SOME_VECTOR}`);
    bytes[10] = (bytes[10] ?? 0) ^ 1;
    await Deno.writeFile(`${root}${SOME_VECTOR}`, bytes);
    let problems = await provenanceProblems(root);
    assert.equal(problems.length, 1);
    assert.match(problems[0] ?? "", /^dangerzone\/share\/rekor\.pub: sha256 [0-9a-f]{64} differs$/);

    await Deno.writeFile(`${root}${SOME_VECTOR}`, bytes.subarray(0, 100));
    problems = await provenanceProblems(root);
    assert.ok(problems.includes(`${SOME_VECTOR}: 100 bytes, expected 178`), problems.join("\n"));

    await Deno.remove(`${root}${SOME_VECTOR}`);
    await Deno.writeTextFile(`${root}dangerzone/share/extra.pub`, "not from upstream\n");
    assert.deepEqual(await provenanceProblems(root), [
      "dangerzone/share/extra.pub: not in PROVENANCE.tsv",
      `${SOME_VECTOR}: missing`,
    ]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
