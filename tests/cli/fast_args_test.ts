/**
 * The start-up parser of the fast commands against commander: wherever `parsePlain` answers, commander
 * (built from the same table) must give the same positional arguments and options; wherever commander
 * refuses or prints help, `parsePlain` must leave the invocation to it. Checked over generated
 * invocations of every command, not only `verify-local`, so the parser stays right as the table grows.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Command } from "commander";
import { COMMANDS } from "../../src/cli/commands.ts";
import { COMMON_OPTIONS } from "../../src/cli/common.ts";
import { fastInvocation, parsePlain } from "../../src/cli/fast_args.ts";
import { buildProgram } from "../../src/cli/program.ts";
import { type CommandSpec, optionShape } from "../../src/cli/spec.ts";
import { oneLine, runCli } from "../_helpers/cli.ts";

type Parsed = { args: string[]; options: Record<string, unknown> } | "refused";

/** What commander makes of `argv` for `spec`: the action's arguments and options, or "refused". */
async function commanderParse(spec: CommandSpec, argv: string[]): Promise<Parsed> {
  let parsed: Parsed = "refused";
  const program = buildProgram((_load, args, options) => {
    parsed = { args, options };
  });
  const quiet = { writeOut: () => {}, writeErr: () => {}, outputError: () => {} };
  for (const cmd of [program, ...program.commands] as Command[]) cmd.configureOutput(quiet);
  try {
    await program.parseAsync([spec.name, ...argv], { from: "user" });
  } catch {
    return "refused";
  }
  return parsed;
}

/** A small deterministic PRNG (mulberry32), so a failure names a reproducible case. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Words an invocation of `spec` is made of: its options in every form, values, and hostile bits. */
function wordsOf(spec: CommandSpec): string[] {
  const words = ["img", "other", "-", "--", "-h", "--help", "-V", "--version", "--bogus", "-x", "", "a=b"];
  for (const option of [...COMMON_OPTIONS, ...(spec.options ?? [])]) {
    const { long, takesValue } = optionShape(option.flags);
    words.push(long, `${long}=`, `${long}=v`, long.toUpperCase());
    if (takesValue) words.push(`${long}=${option.choices?.[0] ?? "x"}`);
    for (const choice of option.choices ?? []) words.push(choice);
  }
  for (const argument of spec.arguments ?? []) words.push(...(argument.choices ?? []));
  return words;
}

/** The shortest valid invocation of `spec`: its required options and arguments. */
function skeleton(spec: CommandSpec): string[] {
  const required = (spec.options ?? []).filter((o) => o.required === true).flatMap((
    o,
  ) => [optionShape(o.flags).long, "v"]);
  const args = (spec.arguments ?? []).filter((a) => a.name.startsWith("<")).map((a) =>
    a.choices?.[0] ?? "img"
  );
  return [...required, ...args];
}

function pick(words: readonly string[], random: () => number): string {
  return words[Math.floor(random() * words.length)] ?? "";
}

for (const spec of COMMANDS) {
  Deno.test(`parsePlain agrees with commander on generated invocations of ${spec.name}`, async () => {
    const vocabulary = wordsOf(spec);
    const random = prng(spec.name.length * 7919);
    const cases = spec.fast === true ? 1500 : 250;
    let answered = 0;
    for (let n = 0; n < cases; n++) {
      const words = Array.from({ length: Math.floor(random() * 7) }, () => pick(vocabulary, random));
      const argv = random() < 0.5 ? [...skeleton(spec), ...words] : words;
      const plain = parsePlain(spec, argv);
      if (plain === undefined) continue;
      answered++;
      const expected = await commanderParse(spec, argv);
      assert.notEqual(expected, "refused", `commander refuses ${JSON.stringify(argv)}, parsePlain does not`);
      assert.deepEqual({ args: plain.args, options: plain.options }, expected, JSON.stringify(argv));
    }
    // the generator must reach the parser's answers, or the check above checks nothing
    assert.ok(answered > cases / 20, `only ${answered} of ${cases} invocations were plain`);
  });
}

Deno.test("parsePlain answers the invocations Dangerzone and scripts make, as commander does", async () => {
  const verifyLocal = COMMANDS.find((c) => c.name === "verify-local");
  assert.ok(verifyLocal !== undefined && verifyLocal.fast === true);
  const invocations = [
    [],
    ["--json"],
    ["ghcr.io/freedomofpress/dangerzone/v1"],
    ["ghcr.io/freedomofpress/dangerzone/v1", "--json", "--runtime", "podman"],
    [
      "--image",
      "registry.example/mirror/dangerzone/v1:latest",
      "--identity",
      "ghcr.io/freedomofpress/dangerzone/v1",
    ],
    [
      "--pubkey=/etc/dz/cosign.pub",
      "--rekor-key",
      "/etc/dz/rekor.pub",
      "--data-dir",
      "/var/lib/dz",
      "--debug",
    ],
    ["--runtime=docker", "--runtime-path", "/usr/local/bin/docker", "--trusted-root", "tr.json", "img"],
    [
      "--insecure-registry",
      "a:5000",
      "--insecure-registry=b:5000",
      "--ca-cert",
      "ca.pem",
      "--no-tor-isolation",
    ],
    ["--tor-isolation", "--proxy", "socks5://127.0.0.1:9050", "--timeout", "5", "--connections", "2"],
  ];
  for (const argv of invocations) {
    const plain = parsePlain(verifyLocal, argv);
    assert.ok(plain !== undefined, JSON.stringify(argv));
    assert.deepEqual({ args: plain.args, options: plain.options }, await commanderParse(verifyLocal, argv));
  }
  assert.deepEqual(fastInvocation(["verify-local", "--json"])?.options, {
    json: true,
    connections: "4",
    insecureRegistry: [],
    caCert: [],
  });
});

Deno.test("parsePlain leaves help, bad choices, unknown options and extra arguments to commander", () => {
  for (
    const argv of [
      ["verify-local", "--help"],
      ["verify-local", "-h"],
      ["verify-local", "--runtime", "lxc"],
      ["verify-local", "--runtime"],
      ["verify-local", "--image", "--json"],
      ["verify-local", "--no-such-option"],
      ["verify-local", "a", "b"],
      ["verify-local", "--", "a"],
      ["verify-local", "--json=yes"],
      ["check", "--json"], // not a fast command
      [],
    ]
  ) {
    assert.equal(fastInvocation(argv), undefined, JSON.stringify(argv));
  }
});

Deno.test("verify-local usage errors and help still come from commander, as for every command", async () => {
  const help = await runCli(["verify-local", "--help"]);
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /^Usage: dangerzone-image verify-local \[options\] \[image\]/);
  assert.match(help.stdout, /Example:\n {2}\$ dangerzone-image verify-local /);
  for (
    const [argv, message] of [
      [["--runtime", "lxc"], /Allowed choices are podman, docker/],
      [["--no-such-option"], /^error: unknown option '--no-such-option' \(run with --help for usage\)$/],
      [["a", "b"], /^error: too many arguments/],
      [["--image"], /^error: option '--image <ref>' argument missing/],
    ] as const
  ) {
    const r = await runCli(["verify-local", ...argv]);
    assert.equal(r.code, 2, `${argv.join(" ")}: ${r.stderr}`);
    assert.match(oneLine(r.stderr), message);
  }
});
