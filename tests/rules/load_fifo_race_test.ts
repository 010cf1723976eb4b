/**
 * A rule file swapped for a FIFO between the check of what it is and its opening (an odd deploy tool,
 * or someone who can write to the rules directory): opening a FIFO waits for a writer, so a reload
 * that opened one never ended and no later edit of the rules was read. The swap is made by another
 * thread, as fast as it can, while the file is read again and again; every read must settle.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import { readRuleFileBytes } from "../../src/rules/load.ts";

const SWAPS = 1_000_000;
const READS = 3000;

Deno.test("a rule file swapped for a FIFO while it is read: every read settles, as the file or as not a regular file", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/rules.yaml`;
  const regular = `${dir}/regular`;
  const fifo = `${dir}/fifo`;
  await Deno.writeTextFile(regular, "rules: []\n");
  const mkfifo = await new Deno.Command("mkfifo", { args: [fifo] }).output();
  assert.equal(mkfifo.code, 0, new TextDecoder().decode(mkfifo.stderr));
  await Deno.copyFile(regular, path);
  // The swapping thread: `path` is the regular file and the FIFO in turn (hard links, renamed over it).
  const code = `
    const [regular, fifo, path, swaps] = ${JSON.stringify([regular, fifo, path, SWAPS])};
    let stop = false;
    self.onmessage = () => stop = true;
    let i = 0;
    for (; i < swaps && !stop; i++) {
      for (const from of [regular, fifo]) {
        Deno.linkSync(from, path + ".next");
        Deno.renameSync(path + ".next", path);
      }
      if (i % 500 === 0) await new Promise((r) => setTimeout(r, 0));
    }
    self.postMessage(i);
  `;
  const worker = new Worker(`data:application/javascript,${encodeURIComponent(code)}`, { type: "module" });
  const swapped = new Promise<number>((resolve) => worker.onmessage = (e) => resolve(e.data));
  let finished = false;
  swapped.then(() => finished = true);
  const outcomes = { file: 0, notRegular: 0 };
  let swaps = 0;
  try {
    for (let i = 0; i < READS && !finished; i++) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const read = await Promise.race([
        readRuleFileBytes(path),
        new Promise<"hung">((r) => timer = setTimeout(() => r("hung"), 5000)),
      ]);
      clearTimeout(timer);
      if (read === "hung") assert.fail(`read ${i} did not settle: ${JSON.stringify(outcomes)}`);
      if (read.bytes !== null) {
        assert.equal(new TextDecoder().decode(read.bytes), "rules: []\n");
        outcomes.file++;
      } else {
        assert.match(read.problem.message, /Not a regular file/);
        outcomes.notRegular++;
      }
    }
  } finally {
    worker.postMessage("stop");
    swaps = await swapped;
    worker.terminate();
    // A read the FIFO held (the old code) waits for a writer: one comes, so the test can end.
    try {
      fs.closeSync(fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK));
    } catch { /* no reader waits on it */ }
    await Deno.remove(dir, { recursive: true });
  }
  // The reads ran while the file was swapped, and saw both.
  assert.ok(
    swaps > 1000 && outcomes.file > 0 && outcomes.notRegular > 0,
    JSON.stringify({ swaps, ...outcomes }),
  );
});
