/**
 * CPU time and memory of a process, read from /proc (Linux) through `cat`: Deno grants /proc only
 * with --allow-all, and the bench task names its permissions.
 *
 * @module
 */

async function readProc(path: string): Promise<string> {
  const out = await new Deno.Command("cat", { args: [path], stdout: "piped", stderr: "null" }).output();
  if (!out.success) throw new Error(`Cannot read ${path}`);
  return new TextDecoder().decode(out.stdout);
}

/** User + system CPU seconds the process has used so far. */
export async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readProc(`/proc/${pid}/stat`);
  // The command name may contain spaces: fields are counted after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]);
  // USER_HZ is 100 on every Linux we target.
  return ticks / 100;
}

/** Peak and current resident set size in MiB (VmHWM, VmRSS). */
export async function memoryMiB(pid: number): Promise<{ peak: number; current: number }> {
  const status = await readProc(`/proc/${pid}/status`);
  const kib = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
  return { peak: kib("VmHWM") / 1024, current: kib("VmRSS") / 1024 };
}

export async function machine(): Promise<{ cpu: string; cores: number; ram_gib: number }> {
  const cpuinfo = await readProc("/proc/cpuinfo");
  const meminfo = await readProc("/proc/meminfo");
  return {
    cpu: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? "unknown",
    cores: (cpuinfo.match(/^processor\s*:/gm) ?? []).length,
    ram_gib: Math.round(Number(/^MemTotal:\s+(\d+)/m.exec(meminfo)?.[1] ?? 0) / 1024 / 1024),
  };
}
