import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";

/**
 * The seam between the process pool (src/stdio/pool.ts: spawning, caps, idle, back-off) and the bridge
 * (src/stdio/bridge.ts: streamable HTTP ↔ JSON-RPC over the process's stdin/stdout).
 */

/** Whom a process serves: a gateway user through one client (one grant's user and client). */
export interface StdioOwner {
  /** The gateway user (the access token's `sub`). */
  user: string;
  clientId: string;
  grantId: string;
}

/** One running stdio server process, as the bridge sees it. */
export interface StdioChild {
  readonly pid: number | undefined;
  /** Counts the spawns behind one process key: a new number is a fresh process the bridge must initialize again. */
  readonly generation: number;
  send(message: JSONRPCMessage): Promise<void>;
  /** Set by the bridge: every message the process writes to stdout. */
  onmessage?: (message: JSONRPCMessage) => void;
  /** Set by the bridge: called once, when the process has exited or its pipes closed. */
  onexit?: (reason: string) => void;
  /** The process is in use until the returned release is called; the idle timeout counts from the last release. */
  hold(): () => void;
}

/** A process for the caller, or why there is none now: a cap reached or a restart back-off (answered 503). */
export type Acquired = { child: StdioChild } | { refused: string; retryAfterSeconds: number };

export interface StdioProcesses {
  /**
   * The key that names the process an owner reaches on a server: the server's name alone when it is
   * `shared`, else the server with the owner's user and client. Bridges keep their state by it.
   */
  keyOf(server: string, owner: StdioOwner): string;
  /** Whether one process serves every user of the server (`shared`): its messages must not cross between them. */
  isShared(server: string): boolean;
  /** The process for this key, started if none runs, or refused. */
  acquire(server: string, owner: StdioOwner): Promise<Acquired>;
  /** Processes running now (for tests, the banner and /readyz). */
  readonly running: number;
  /** Ends every process (stdin closed, then SIGTERM, then SIGKILL after a grace); none starts afterwards. */
  close(): Promise<void>;
}
