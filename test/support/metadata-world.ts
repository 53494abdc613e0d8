import { ManualClock } from "../../src/clock.js";
import { DEFAULT_APPS, startSimulator, type Simulator } from "../../src/simulator/index.js";
import { selfSignedCertificate, startDocumentServer, type DocumentServer, type TestCertificate } from "./https.js";
import { freePort, startGatewayProcess, type GatewayProcess } from "./processes.js";
import { LOGIN } from "./config.js";

/**
 * Where Client ID Metadata Documents are tested: a document server on https with a self-signed
 * certificate, the GitHub simulator, and gateway processes in front of it that trust the certificate
 * and may fetch from loopback (`--allow-private-fetch true`).
 */
export interface MetadataWorld {
  certificate: TestCertificate;
  docs: DocumentServer;
  simulator: Simulator;
  /** One more such gateway, with `args` on top (e.g. `--trust-proxy loopback`); stopped by `close`. */
  startGateway(args?: readonly string[]): Promise<GatewayProcess>;
  close(): Promise<void>;
}

export async function startMetadataWorld(): Promise<MetadataWorld> {
  const app = DEFAULT_APPS.find((a) => a.kind === "oauth_app")!;
  const certificate = selfSignedCertificate();
  const docs = await startDocumentServer(certificate);
  const simulator = await startSimulator({ clock: new ManualClock() });
  const gateways: GatewayProcess[] = [];
  const startGateway = async (args: readonly string[] = []) => {
    const port = await freePort();
    const gateway = await startGatewayProcess(
      [
        ...["--port", String(port), "--public-url", `http://127.0.0.1:${port}`, "--store", "memory"],
        ...["--upstream-rs", simulator.mcpUrl, "--allow-private-fetch", "true", ...args],
      ],
      {
        NODE_EXTRA_CA_CERTS: certificate.certFile,
        MCP_GATEWAY_UPSTREAM_CLIENT_ID: app.clientId,
        MCP_GATEWAY_UPSTREAM_CLIENT_SECRET: app.clientSecrets[0],
        MCP_GATEWAY_USERNAME: LOGIN.username,
        MCP_GATEWAY_PASSWORD: LOGIN.password,
      },
    );
    gateways.push(gateway);
    return gateway;
  };
  return {
    certificate,
    docs,
    simulator,
    startGateway,
    close: async () => {
      await Promise.all(gateways.map((g) => g.kill()));
      await docs.close();
      await simulator.close();
      certificate.remove();
    },
  };
}
