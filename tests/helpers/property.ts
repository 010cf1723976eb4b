/**
 * Bounded fast-check runs. A failure reports its seed and path (fast-check puts them in the error);
 * `FC_SEED=<seed> FC_PATH=<path>` replays exactly that case, `FC_RUNS=<n>` runs more cases.
 */
import fc from "fast-check";
import { getEnv } from "../../src/env.ts";

export function checkProperty<Ts>(property: fc.IProperty<Ts>, numRuns = 200): void {
  const seed = getEnv("FC_SEED");
  const path = getEnv("FC_PATH");
  const runs = getEnv("FC_RUNS");
  fc.assert(property, {
    numRuns: runs === undefined ? numRuns : Number(runs),
    ...(seed === undefined ? {} : { seed: Number(seed) }),
    ...(path === undefined ? {} : { path }),
  });
}
