/**
 * Full garbage collections on demand in a running gateway, so RSS readings compare live memory and
 * not whatever garbage V8 happened to keep: SIGUSR1 opens Node's inspector (on the port given by
 * --inspect-port), and the Chrome DevTools Protocol's HeapProfiler.collectGarbage runs one.
 */
import { readFileSync } from "node:fs";
import { WebSocket } from "undici";
import { sleep } from "./processes.js";

export interface Inspector {
  collectGarbage(): Promise<void>;
  /** V8's JS heap in use (bytes), from Runtime.getHeapUsage. */
  heapUsed(): Promise<number>;
  close(): void;
}

export async function openInspector(pid: number, stderrPath: string): Promise<Inspector> {
  process.kill(pid, "SIGUSR1");
  let url: string | undefined;
  for (let waited = 0; !url; waited += 50) {
    url = /Debugger listening on (ws:\/\/\S+)/.exec(readFileSync(stderrPath, "utf8"))?.[1];
    if (waited > 10_000) throw new Error("the gateway's inspector did not start on SIGUSR1");
    if (!url) await sleep(50);
  }
  const ws = new WebSocket(url);
  await new Promise<void>((resolve, reject) => {
    ws.addEventListener("open", () => resolve());
    ws.addEventListener("error", () => reject(new Error(`could not connect to the gateway's inspector at ${url}`)));
  });
  const pending = new Map<number, (result: Record<string, unknown>) => void>();
  ws.addEventListener("message", (event) => {
    const message = JSON.parse(String(event.data)) as { id?: number; result?: Record<string, unknown> };
    if (message.id !== undefined) pending.get(message.id)?.(message.result ?? {});
  });
  let next = 0;
  const call = (method: string) =>
    new Promise<Record<string, unknown>>((resolve) => {
      const id = ++next;
      pending.set(id, resolve);
      ws.send(JSON.stringify({ id, method }));
    });
  return {
    collectGarbage: async () => void (await call("HeapProfiler.collectGarbage")),
    heapUsed: async () => Number((await call("Runtime.getHeapUsage")).usedSize),
    close: () => ws.close(),
  };
}
