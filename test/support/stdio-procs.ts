import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** The programs of the stdio servers the tests run, from node_modules/.bin. */
export const bin = (name: "mcp-server-everything" | "mcp-server-memory"): string => fileURLToPath(new URL(`../../node_modules/.bin/${name}`, import.meta.url));

interface Proc {
  pid: number;
  ppid: number;
  state: string;
  cmdline: string;
}

/** Every process now (Linux /proc, proc(5)): pid, parent, state, command line. */
function processes(): Proc[] {
  const all: Proc[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // the command name in parentheses may hold spaces: the fields after it start at its last ")"
      const [state, ppid] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8").replaceAll("\0", " ");
      all.push({ pid: Number(entry), ppid: Number(ppid), state: state!, cmdline });
    } catch {
      continue; // gone between the listing and the read
    }
  }
  return all;
}

/** The live processes under `parent` (children, theirs, …) whose command line contains `match`. */
export function processesUnder(parent: number, match: string): number[] {
  const all = processes().filter((p) => p.state !== "Z");
  const under = new Set([parent]);
  for (let grew = true; grew;) {
    grew = false;
    for (const p of all)
      if (under.has(p.ppid) && !under.has(p.pid)) {
        under.add(p.pid);
        grew = true;
      }
  }
  return all.filter((p) => p.pid !== parent && under.has(p.pid) && p.cmdline.includes(match)).map((p) => p.pid);
}

/** Whether a process runs (a zombie does not count). */
export function alive(pid: number): boolean {
  return processes().some((p) => p.pid === pid && p.state !== "Z");
}

/** A process's working directory: the pool starts each in its user's directory. */
export const cwdOf = (pid: number): string => readlinkSync(`/proc/${pid}/cwd`);
