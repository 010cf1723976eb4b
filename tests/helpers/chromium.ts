/**
 * Headless Chromium for the browser tests: Debian's, or the one `deno task test` found or installed
 * (CHROMIUM_PATH), driven by playwright-core.
 */
import type { BrowserContext, Page } from "playwright-core";

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

/** Collects, as they come, `page`'s script errors and what the server's Content-Security-Policy blocks. */
export function pageErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  // What the Content-Security-Policy blocks is reported on the console, not as a page error.
  page.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy/i.test(m.text())) errors.push(m.text());
  });
  return errors;
}
