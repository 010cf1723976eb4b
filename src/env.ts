/**
 * The process environment, read one variable at a time so the service runs with a named
 * `--allow-env=...` list. A variable outside that list reads as unset instead of throwing.
 */
export function getEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch (err) {
    if (err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.PermissionDenied) {
      return undefined;
    }
    throw err;
  }
}

/** A read-only view of the environment with the same lenient reads. */
export const env: Readonly<Record<string, string | undefined>> = new Proxy({}, {
  get: (_target, key) => typeof key === "string" ? getEnv(key) : undefined,
});
