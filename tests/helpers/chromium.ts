/**
 * Headless Chromium for the browser tests: Debian's, or the one `deno task test` found or installed
 * (CHROMIUM_PATH), driven by playwright-core.
 */
import type { BrowserContext } from "playwright-core";

const CHROMIUM = Deno.env.get("CHROMIUM_PATH") ?? "/usr/bin/chromium";

/** A persistent context in `profile` (a fresh temporary directory), optionally with a viewport. */
export async function launchChromium(
  profile: string,
  viewport?: { width: number; height: number },
): Promise<BrowserContext> {
  // playwright-core probes for WSL when its bundle loads, reading /proc/sys/fs/binfmt_misc, which Deno
  // grants only under --allow-all (the test task names its permissions): this defers the probe, which
  // only serves opening files on Windows. Hence the dynamic import, after it.
  Deno.env.set("__IS_WSL_TEST__", "1");
  const { chromium } = await import("playwright-core");
  return await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    ...(viewport === undefined ? {} : { viewport }),
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
  });
}
