import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { systemClock, type Clock } from "../../src/clock.js";
import { StdioBridge, type SessionLimits } from "../../src/stdio/bridge.js";
import type { StdioProcesses } from "../../src/stdio/child.js";

/**
 * The bridge alone behind plain node:http, without the gateway's authentication: the caller is whoever
 * the `x-test-user` header names (client `test-client`). Answers the bridge's refusals as JSON-RPC errors.
 */
export async function startBridgeServer(
  server: string,
  processes: StdioProcesses,
  options: { clock?: Clock; sessionLimits?: SessionLimits } = {},
): Promise<{ url: string; bridge: StdioBridge; warnings: string[]; close(): Promise<void> }> {
  const warnings: string[] = [];
  const bridge = new StdioBridge(server, processes, {
    log: { warn: (line) => warnings.push(line) },
    clock: options.clock ?? systemClock,
    ...(options.sessionLimits ? { sessionLimits: options.sessionLimits } : {}),
  });
  const http: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      const user = String(req.headers["x-test-user"] ?? "alice");
      const body: unknown = text ? JSON.parse(text) : undefined;
      bridge.handle(req, res, { user, clientId: "test-client", grantId: `grant-${user}` }, body).then(
        (refused) => {
          if (!refused) return;
          const payload = JSON.stringify({ jsonrpc: "2.0", id: refused.id, error: { code: refused.code, message: refused.message } });
          res.writeHead(refused.status, { "content-type": "application/json", ...refused.headers }).end(payload);
        },
        () => res.headersSent || res.writeHead(500).end(),
      );
    });
  });
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  const { port } = http.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    bridge,
    warnings,
    close: async () => {
      await bridge.close();
      http.closeAllConnections();
      await new Promise((resolve) => http.close(resolve));
    },
  };
}
