/**
 * What the benchmarks read from Linux's /proc (CPU time, memory, load) and
 * their environment knobs, shared by requests.ts, envelope.ts and
 * chat_room.ts. Off Linux the readings are NaN (or "–").
 *
 * @module
 */

let clockTicks = 100;

/** Reads the kernel's clock ticks per second; call once before {@linkcode cpuSeconds}. */
export async function initClockTicks(): Promise<void> {
  try {
    const out = await new Deno.Command("getconf", { args: ["CLK_TCK"], stderr: "null" }).output();
    const value = Number(new TextDecoder().decode(out.stdout).trim());
    clockTicks = value > 0 ? value : 100;
  } catch {
    clockTicks = 100;
  }
}

/** A numeric knob from the environment, checked against its range. */
export function envNumber(name: string, fallback: number, min: number, max: number): number {
  const text = Deno.env.get(name);
  if (text === undefined || text === "") return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new RangeError(`Invalid ${name} "${text}": expected a number from ${min} to ${max}`);
  }
  return value;
}

/** CPU seconds (user + system) a process has used, or NaN off Linux. */
export function cpuSeconds(pid: number | "self"): number {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // Fields after the command name, which is in parentheses and may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / clockTicks;
  } catch {
    return NaN;
  }
}

/**
 * CPU seconds of the whole machine (all cores) from /proc/stat: `busy` is
 * user, system, irq and softirq time of every process and the kernel;
 * `steal` is time the hypervisor gave this virtual machine's CPUs to someone
 * else.
 */
export function machineSeconds(): { busy: number; steal: number } {
  try {
    const line = Deno.readTextFileSync("/proc/stat").split("\n")[0];
    const [user, nice, system, _idle, _iowait, irq, softirq, steal] = line.trim().split(/\s+/)
      .slice(1, 9).map(Number);
    return { busy: (user + nice + system + irq + softirq) / clockTicks, steal: steal / clockTicks };
  } catch {
    return { busy: NaN, steal: NaN };
  }
}

/** Peak resident set size in KiB, or NaN. */
export function peakRssKib(pid: number | "self"): number {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    return Number(/^VmHWM:\s+(\d+)/m.exec(status)?.[1] ?? NaN);
  } catch {
    return NaN;
  }
}

/** The 1, 5 and 15 minute load averages, or "–". */
export function loadAverage(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  } catch {
    return "–";
  }
}
