import { readdirSync, readlinkSync } from "node:fs";

export interface OpenFiles {
  /** Entries of /proc/<pid>/fd. */
  fds: number;
  /** Those that are sockets (links to `socket:[inode]`). */
  sockets: number;
}

/** What a process holds open right now (Linux /proc, proc(5)). */
export function openFiles(pid: number): OpenFiles {
  const dir = `/proc/${pid}/fd`;
  let fds = 0;
  let sockets = 0;
  for (const fd of readdirSync(dir)) {
    let target: string;
    try {
      target = readlinkSync(`${dir}/${fd}`);
    } catch {
      continue; // closed between the listing and the look
    }
    fds++;
    if (target.startsWith("socket:[")) sockets++;
  }
  return { fds, sockets };
}
