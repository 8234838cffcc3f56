import assert from "node:assert/strict";
import { DangerzoneError } from "../../src/errors.ts";
import { OciLayoutDir } from "../../src/layout/dir.ts";
import { type ArchiveReadOptions, readOciArchive } from "../../src/layout/tar_reader.ts";
import { pax, type RawEntry, rawTar, sha256Hex, streamOf } from "./_tar_fixture.ts";

const enc = new TextEncoder();
const OCI_LAYOUT = enc.encode('{"imageLayoutVersion":"1.0.0"}');
const INDEX = enc.encode('{"schemaVersion":2,"manifests":[]}');
const BLOB = enc.encode("hello blob\n");
const HEX = await sha256Hex(BLOB);
const OTHER = enc.encode("other blob\n");
const OTHER_HEX = await sha256Hex(OTHER);

function base(): RawEntry[] {
  return [
    { name: "./", type: "5" },
    { name: "./blobs/", type: "5" },
    { name: "./blobs/sha256/", type: "5" },
    { name: `./blobs/sha256/${HEX}`, body: BLOB },
    { name: "./index.json", body: INDEX },
    { name: "./oci-layout", body: OCI_LAYOUT },
  ];
}

/** The base archive with `extra` inserted before `./index.json`. */
function withEntries(...extra: RawEntry[]): Uint8Array {
  const entries = base();
  entries.splice(4, 0, ...extra);
  return rawTar(entries);
}

async function withStaging<T>(fn: (staging: OciLayoutDir, path: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "dz-tar-reader-" });
  try {
    return await fn(await OciLayoutDir.create(dir), dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function tmpFiles(path: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(`${path}/blobs/sha256`)) if (e.name.endsWith(".tmp")) out.push(e.name);
  return out;
}

/** Asserts that reading `bytes` fails with ARCHIVE_INVALID matching `message`, leaving no temp files. */
async function assertRefused(
  bytes: Uint8Array,
  message: RegExp,
  options: ArchiveReadOptions = {},
): Promise<void> {
  await withStaging(async (staging, path) => {
    await assert.rejects(readOciArchive(streamOf(bytes, 1000), staging, options), (err: unknown) => {
      assert.ok(err instanceof DangerzoneError, `not a DangerzoneError: ${err}`);
      assert.equal(err.code, "ARCHIVE_INVALID", err.message);
      assert.match(err.message, message);
      assert.doesNotMatch(err.message, /\n/);
      return true;
    });
    assert.deepEqual(await tmpFiles(path), []);
  });
}

Deno.test("readOciArchive() accepts the minimal layout archive (so every refusal below is about its one change)", async () => {
  await withStaging(async (staging) => {
    const c = await readOciArchive(streamOf(rawTar(base()), 7), staging);
    assert.deepEqual(c.entries, [
      "/",
      "blobs/",
      "blobs/sha256/",
      `blobs/sha256/${HEX}`,
      "index.json",
      "oci-layout",
    ]);
    assert.deepEqual(c.untrustedIndexJson, INDEX);
    assert.equal(c.untrustedDangerzoneJson, undefined);
    assert.deepEqual([...c.blobs], [[`sha256:${HEX}`, BLOB.length]]);
    assert.deepEqual(await Deno.readFile(staging.blobPath(`sha256:${HEX}` as never)), BLOB);
  });
});

Deno.test("readOciArchive() accepts bare names, GNU magic, benign pax records, a global comment and record padding", async () => {
  const entries: RawEntry[] = [
    pax({ comment: "made by a test" }, "g"),
    { name: ".", type: "5", magic: "gnu" },
    { name: "blobs", type: "5" },
    pax({ path: `blobs/sha256/${HEX}`, mtime: "1.5", uname: "someone" }),
    { name: "whatever-the-pax-path-wins", body: BLOB },
    { name: "index.json", body: INDEX, magic: "gnu" },
    { name: "oci-layout", prefix: ".", body: OCI_LAYOUT },
  ];
  const tar = rawTar(entries);
  const padded = new Uint8Array(Math.ceil(tar.length / 10240) * 10240);
  padded.set(tar);
  await withStaging(async (staging) => {
    const c = await readOciArchive(streamOf(padded), staging);
    assert.deepEqual(c.entries, ["/", "blobs/", `blobs/sha256/${HEX}`, "index.json", "oci-layout"]);
  });
});

Deno.test("readOciArchive() reads a Deno file's byte stream (BYOB) as well as a file", async () => {
  await withStaging(async (staging, path) => {
    await Deno.writeFile(`${path}/a.tar`, rawTar(base()));
    using file = await Deno.open(`${path}/a.tar`);
    const c = await readOciArchive(file.readable, staging);
    assert.equal(c.blobs.size, 1);
  });
});

const hostile: [string, () => Uint8Array, RegExp, ArchiveReadOptions?][] = [
  [
    "an absolute path",
    () => withEntries({ name: "/etc/passwd", body: BLOB }),
    /'\/etc\/passwd' has an absolute path/,
  ],
  [
    "a '..' component",
    () => withEntries({ name: "./blobs/../../x", body: BLOB }),
    /'\.\/blobs\/\.\.\/\.\.\/x' has a '\.\.'/,
  ],
  [
    "a symbolic link",
    () => withEntries({ name: "./index.json", type: "2", linkname: "/etc/passwd" }),
    /'\.\/index\.json' is a symbolic link/,
  ],
  [
    "a hard link",
    () => withEntries({ name: `./blobs/sha256/${OTHER_HEX}`, type: "1", linkname: "/etc/shadow" }),
    /is a hard link/,
  ],
  ["a character device", () => withEntries({ name: "./dev", type: "3" }), /'\.\/dev' is a device node/],
  ["a block device", () => withEntries({ name: "./blobs/sda", type: "4" }), /is a device node/],
  ["a fifo", () => withEntries({ name: "./fifo", type: "6" }), /'\.\/fifo' is a FIFO/],
  [
    "a GNU sparse file",
    () => withEntries({ name: `./blobs/sha256/${OTHER_HEX}`, type: "S", body: OTHER }),
    /unsupported type flag 'S'/,
  ],
  [
    "a contiguous file",
    () => withEntries({ name: `./blobs/sha256/${OTHER_HEX}`, type: "7", body: OTHER }),
    /unsupported type flag '7'/,
  ],
  [
    "a GNU long name",
    () => withEntries({ name: "././@LongLink", type: "L", body: enc.encode("../../x\0") }),
    /GNU long-name/,
  ],
  [
    "a duplicate name (./ and bare)",
    () => withEntries({ name: "index.json", body: INDEX }),
    /'\.\/index\.json' appears twice/,
  ],
  ["a duplicate blob", () => withEntries({ name: `blobs/sha256/${HEX}`, body: BLOB }), /appears twice/],
  ["a duplicate directory", () => withEntries({ name: "./blobs", type: "5" }), /'\.\/blobs' appears twice/],
  [
    "a name outside the layout",
    () => withEntries({ name: "./etc/passwd", body: BLOB }),
    /'\.\/etc\/passwd' is outside the OCI image layout/,
  ],
  [
    "a short blob name",
    () => withEntries({ name: "./blobs/sha256/abc", body: BLOB }),
    /is outside the OCI image layout/,
  ],
  [
    "an upper-case blob name",
    () => withEntries({ name: `./blobs/sha256/${HEX.toUpperCase()}`, body: BLOB }),
    /is outside the OCI image layout/,
  ],
  [
    "a sha512 blob",
    () => withEntries({ name: `./blobs/sha512/${HEX}${HEX}`, body: BLOB }),
    /is outside the OCI image layout/,
  ],
  [
    "a directory outside the layout",
    () => withEntries({ name: "./evil/", type: "5" }),
    /'\.\/evil\/' is a directory outside/,
  ],
  [
    "a regular file with a directory name",
    () => withEntries({ name: "./blobs/sha256/", body: BLOB }),
    /regular file with a directory name/,
  ],
  [
    "a directory with a body",
    () => withEntries({ name: "./blobs/", type: "5", body: BLOB }),
    /directory with a body/,
  ],
  [
    "a backslash",
    () => withEntries({ name: "blobs\\sha256", body: BLOB }),
    /control characters or a backslash/,
  ],
  [
    "a name that is not UTF-8",
    () => withEntries({ name: "", nameBytes: new Uint8Array([0x2e, 0x2f, 0xff, 0xfe]), body: BLOB }),
    /not valid UTF-8/,
  ],
  [
    "an entry over the size cap",
    () => rawTar(base()),
    new RegExp(`'\\./blobs/sha256/${HEX}' is 11 bytes, over the 10-byte cap`),
    { maxEntryBytes: 10 },
  ],
  [
    "a 1 TiB entry (tar bomb) under the default cap",
    () => withEntries(pax({ size: String(2 ** 40) }), { name: `./blobs/sha256/${OTHER_HEX}`, body: OTHER }),
    /is 1099511627776 bytes, over the/,
  ],
  [
    "more blob bytes than the total cap",
    () => withEntries({ name: `./blobs/sha256/${OTHER_HEX}`, body: OTHER }),
    /more than 15 bytes of blobs/,
    { maxTotalBytes: 15 },
  ],
  [
    "more entries than the cap",
    () => rawTar(base()),
    /more than 3 entries \(stopped at '\.\/blobs\/sha256\/[0-9a-f]{64}'\)/,
    { maxEntries: 3 },
  ],
  ["an oversized index.json", () => rawTar(base()), /'\.\/index\.json' is 34 bytes, over the 20-byte cap/, {
    maxIndexBytes: 20,
  }],
  [
    "a truncated body",
    () => rawTar(base()).subarray(0, 4 * 512 + 5),
    /truncated inside entry '\.\/blobs\/sha256\//,
  ],
  [
    "a truncated header",
    () => rawTar(base()).subarray(0, 3 * 512 + 100),
    /truncated: it ends without the end-of-archive marker/,
  ],
  [
    "a missing end-of-archive marker",
    () => rawTar(base(), { end: false }),
    /truncated: it ends without the end-of-archive marker/,
  ],
  [
    "half an end-of-archive marker",
    () => rawTar(base()).subarray(0, rawTar(base()).length - 512),
    /end-of-archive marker is incomplete/,
  ],
  [
    "truncated padding",
    () =>
      rawTar([{ name: "./oci-layout", body: OCI_LAYOUT }], { end: false }).subarray(
        0,
        512 + OCI_LAYOUT.length + 3,
      ),
    /truncated after entry '\.\/oci-layout'/,
  ],
  [
    "a bad header checksum",
    () => withEntries({ name: `./blobs/sha256/${OTHER_HEX}`, body: OTHER, badChecksum: true }),
    /bad header checksum/,
  ],
  [
    "a header without ustar magic (v7 or garbage)",
    () => withEntries({ name: `./blobs/sha256/${OTHER_HEX}`, body: OTHER, magic: "none" }),
    /not in ustar, pax or GNU tar format/,
  ],
  [
    "a pax path override to ../x",
    () => withEntries(pax({ path: "../x" }), { name: `./blobs/sha256/${OTHER_HEX}`, body: OTHER }),
    /'\.\.\/x' has a '\.\.' path component/,
  ],
  [
    "a pax path override to an absolute path",
    () => withEntries(pax({ path: "/etc/cron.d/x" }), { name: `./blobs/sha256/${OTHER_HEX}`, body: OTHER }),
    /'\/etc\/cron\.d\/x' has an absolute path/,
  ],
  [
    "a pax path override that duplicates a name",
    () =>
      withEntries(pax({ path: "./oci-layout" }), { name: `./blobs/sha256/${OTHER_HEX}`, body: OCI_LAYOUT }),
    /'\.\/oci-layout' appears twice/,
  ],
  [
    "a pax linkpath record",
    () => withEntries(pax({ linkpath: "/etc/passwd" }), { name: `./blobs/sha256/${OTHER_HEX}`, body: OTHER }),
    /'linkpath' record/,
  ],
  [
    "a GNU sparse pax record",
    () => withEntries(pax({ "GNU.sparse.size": "99" }), { name: `./blobs/sha256/${OTHER_HEX}`, body: OTHER }),
    /'GNU\.sparse\.size' record/,
  ],
  [
    "a global pax path override",
    () => withEntries(pax({ path: "../x" }, "g"), { name: `./blobs/sha256/${OTHER_HEX}`, body: OTHER }),
    /global pax header that overrides 'path'/,
  ],
  [
    "a malformed pax record",
    () =>
      withEntries({ name: "p", type: "x", body: enc.encode("99 path=x\n") }, {
        name: `./blobs/sha256/${OTHER_HEX}`,
        body: OTHER,
      }),
    /malformed pax record/,
  ],
  [
    "a malformed pax size",
    () => withEntries(pax({ size: "-1" }), { name: `./blobs/sha256/${OTHER_HEX}`, body: OTHER }),
    /malformed pax size/,
  ],
  [
    "two pax headers in a row",
    () =>
      withEntries(pax({ mtime: "1" }), pax({ mtime: "2" }), {
        name: `./blobs/sha256/${OTHER_HEX}`,
        body: OTHER,
      }),
    /two pax headers in a row/,
  ],
  [
    "a blob whose bytes do not match its name",
    () => withEntries({ name: `./blobs/sha256/${OTHER_HEX}`, body: enc.encode("other blob!") }),
    new RegExp(`'\\./blobs/sha256/${OTHER_HEX}' does not hash to its name`),
  ],
  ["data after the end-of-archive marker", () => {
    const t = rawTar(base());
    const o = new Uint8Array(t.length + 512);
    o.set(t);
    o[t.length + 3] = 1;
    return o;
  }, /data after its end-of-archive marker/],
  ["a lone zero block followed by an entry", () => {
    const e = base();
    const t = rawTar(e.slice(0, 4), { end: false });
    return concat(t, new Uint8Array(512), rawTar(e.slice(4)));
  }, /lone zero block followed by data/],
  ["no index.json", () => rawTar(base().filter((e) => e.name !== "./index.json")), /has no index\.json/],
  ["no oci-layout", () => rawTar(base().filter((e) => e.name !== "./oci-layout")), /has no oci-layout/],
  [
    "a wrong oci-layout",
    () =>
      rawTar([...base().slice(0, 5), {
        name: "./oci-layout",
        body: enc.encode('{"imageLayoutVersion":"2.0.0"}'),
      }]),
    /oci-layout must say/,
  ],
  [
    "index.json that is not JSON",
    () =>
      rawTar([
        ...base().slice(0, 4),
        { name: "./index.json", body: enc.encode("{nope") },
        base()[5] as RawEntry,
      ]),
    /index\.json is not valid strict JSON/,
  ],
  [
    "index.json with a duplicate key",
    () =>
      rawTar([...base().slice(0, 4), {
        name: "./index.json",
        body: enc.encode('{"manifests":[],"manifests":[1]}'),
      }, base()[5] as RawEntry]),
    /index\.json is not valid strict JSON: duplicate key "manifests"/,
  ],
  [
    "not a tar at all",
    () => enc.encode("PK\u0003\u0004 this is a zip file".padEnd(2048, "x")),
    /malformed checksum field/,
  ],
];

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

for (const [what, make, message, options] of hostile) {
  Deno.test(`readOciArchive() refuses ${what} with ARCHIVE_INVALID`, async () => {
    await assertRefused(make(), message, options);
  });
}

Deno.test("readOciArchive() stops a tar bomb of many distinct blobs at the entry cap", async () => {
  const entries: RawEntry[] = [];
  for (let i = 0; i < 60; i++) {
    const body = enc.encode(`blob ${i}`);
    entries.push({ name: `./blobs/sha256/${await sha256Hex(body)}`, body });
  }
  await withStaging(async (staging) => {
    await assert.rejects(
      readOciArchive(streamOf(rawTar(entries)), staging, { maxEntries: 50 }),
      (err: unknown) =>
        err instanceof DangerzoneError && err.code === "ARCHIVE_INVALID" &&
        /more than 50 entries/.test(err.message),
    );
    assert.equal((await staging.listBlobs()).length, 50);
  });
});

Deno.test("readOciArchive() leaves staging without temp files when a blob fails mid-stream", async () => {
  const big = new Uint8Array(3 * 1024 * 1024).fill(7);
  const wrongHex = await sha256Hex(new Uint8Array(3 * 1024 * 1024).fill(8));
  await assertRefused(
    withEntries({ name: `./blobs/sha256/${wrongHex}`, body: big }),
    /does not hash to its name/,
  );
});

Deno.test("readOciArchive() reads sizes over 8 GiB from the writer's pax + base-256 header (and caps them)", async () => {
  const { entryHeader } = await import("../../src/layout/_tar_header.ts");
  const head = rawTar(base().slice(0, 3), { end: false });
  const huge = entryHeader(`./blobs/sha256/${OTHER_HEX}`, "file", 2 ** 34);
  const bytes = concat(head, huge, new Uint8Array(512));
  await assertRefused(bytes, new RegExp(`is 17179869184 bytes, over the 8589934592-byte cap`), {
    maxEntryBytes: 2 ** 33,
  });
  await assertRefused(bytes, /truncated inside entry/);
});
