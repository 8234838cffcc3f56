/**
 * `createProgress()`: the rate and ETA of a download count what arrived during the phase, not the
 * bytes a resumed download already had, and all connections' bytes together.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createProgress, type ProgressEvent } from "../../src/update/progress.ts";

function recorder() {
  let t = 0;
  const lines: string[] = [];
  const progress = createProgress({
    mode: "ndjson",
    write: (x) => void lines.push(x),
    now: () => t,
    intervalMs: 0,
  });
  return {
    progress,
    at: (ms: number) => (t = ms),
    events: (): ProgressEvent[] => lines.map((l) => JSON.parse(l)),
  };
}

Deno.test("createProgress() does not count resumed bytes as speed: a sane ETA", () => {
  const r = recorder();
  r.progress.start("download", 1000);
  r.progress.update(600); // resumed from disk at once
  r.at(1000);
  r.progress.update(700); // 100 bytes in one second
  const last = r.events().at(-1);
  assert.equal(last?.done, 700);
  assert.equal(last?.rate, 100);
  assert.equal(last?.eta, 3);
});

Deno.test("createProgress() rate of a fresh download and its final event", () => {
  const r = recorder();
  r.progress.start("download", 1000);
  r.at(500);
  r.progress.update(500);
  r.at(1000);
  r.progress.update(1000);
  r.progress.end();
  const events = r.events();
  assert.equal(events.at(-2)?.rate, 1000);
  const final = events.at(-1);
  assert.equal(final?.final, true, "the final event (the caller ends the phase after the digest check)");
  assert.equal(final?.done, 1000);
  assert.equal(final?.rate, 1000);
  assert.equal(final?.eta, 0);
});
