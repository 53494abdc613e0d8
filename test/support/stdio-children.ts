import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import type { Acquired, StdioChild, StdioOwner, StdioProcesses } from "../../src/stdio/child.js";
import { ROOT } from "./processes.js";

/** A stdio server a test starts: a program of node_modules/.bin with its arguments and environment. */
export interface TestServer {
  bin: string;
  env?: Record<string, string>;
  shared?: boolean;
}

/**
 * The smallest StdioProcesses for testing the bridge alone: real processes through the SDK's stdio
 * transport, one per key, started on acquire, none restarted by itself; no caps unless `refuse` says.
 */
export class TestProcesses implements StdioProcesses {
  readonly #children = new Map<string, TestChild>();
  readonly #generations = new Map<string, number>();
  /** Set to make every acquire refused (the pool's cap). */
  refuse: string | undefined;

  constructor(private readonly servers: Record<string, TestServer>) {}

  keyOf(server: string, owner: StdioOwner): string {
    return this.servers[server]?.shared ? server : `${server}\n${owner.user}\n${owner.clientId}`;
  }

  isShared(server: string): boolean {
    return this.servers[server]?.shared === true;
  }

  async acquire(server: string, owner: StdioOwner): Promise<Acquired> {
    if (this.refuse) return { refused: this.refuse, retryAfterSeconds: 7 };
    const key = this.keyOf(server, owner);
    const running = this.#children.get(key);
    if (running) return { child: running };
    const generation = (this.#generations.get(key) ?? 0) + 1;
    this.#generations.set(key, generation);
    const { bin, env } = this.servers[server]!;
    const child = new TestChild(
      generation,
      new StdioClientTransport({ command: `${ROOT}node_modules/.bin/${bin}`, env: { PATH: process.env.PATH!, ...env }, stderr: "ignore" }),
    );
    await child.start();
    this.#children.set(key, child);
    child.exited.then(
      () => this.#children.get(key) === child && this.#children.delete(key),
      () => undefined,
    );
    return { child };
  }

  /** The pid of an owner's process, if one runs. */
  pidOf(server: string, user: string): number | undefined {
    return this.childOf(server, user)?.pid;
  }

  /** An owner's process, if one runs. */
  childOf(server: string, user: string): TestChild | undefined {
    return this.#children.get(this.keyOf(server, { user, clientId: "test-client", grantId: "" }));
  }

  /** The pids running. */
  pids(): number[] {
    return [...this.#children.values()].map((child) => child.pid!);
  }

  get running(): number {
    return this.#children.size;
  }

  async close(): Promise<void> {
    await Promise.all([...this.#children.values()].map((child) => child.stop()));
  }
}

class TestChild implements StdioChild {
  onmessage?: (message: JSONRPCMessage) => void;
  onexit?: (reason: string) => void;
  holds = 0;
  /** The methods the bridge sent, in order. */
  readonly sent: string[] = [];
  readonly exited: Promise<void>;
  #exited!: () => void;

  constructor(
    readonly generation: number,
    private readonly transport: StdioClientTransport,
  ) {
    this.exited = new Promise((resolve) => (this.#exited = resolve));
    transport.onmessage = (message) => this.onmessage?.(message);
    transport.onclose = () => {
      this.#exited();
      this.onexit?.("closed");
    };
  }

  get pid(): number | undefined {
    return this.transport.pid ?? undefined;
  }

  start(): Promise<void> {
    return this.transport.start();
  }

  send(message: JSONRPCMessage): Promise<void> {
    if ("method" in message) this.sent.push(message.method);
    return this.transport.send(message);
  }

  hold(): () => void {
    this.holds++;
    let held = true;
    return () => {
      if (held) this.holds--;
      held = false;
    };
  }

  async stop(): Promise<void> {
    await this.transport.close();
    await this.exited;
  }
}
