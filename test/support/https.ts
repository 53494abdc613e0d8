import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import type { ServerResponse } from "node:http";
import { createServer } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REDIRECT_URI } from "./oauth-steps.js";

/** A self-signed certificate for 127.0.0.1, ::1, localhost and cimd.test, made with the openssl CLI. */
export interface TestCertificate {
  key: string;
  cert: string;
  /** The certificate's file: NODE_EXTRA_CA_CERTS for a gateway process that must trust it. */
  certFile: string;
  remove(): void;
}

export function selfSignedCertificate(): TestCertificate {
  const dir = mkdtempSync(join(tmpdir(), "gateway-tls-"));
  const keyFile = join(dir, "key.pem");
  const certFile = join(dir, "cert.pem");
  execFileSync(
    "openssl",
    [
      ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"],
      ...["-keyout", keyFile, "-out", certFile, "-subj", "/CN=cimd-test"],
      ...["-addext", "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost,DNS:cimd.test"],
    ],
    { stdio: "ignore" },
  );
  return { key: readFileSync(keyFile, "utf8"), cert: readFileSync(certFile, "utf8"), certFile, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** What one path answers: a status, headers and a body (an object is sent as JSON), or a handler of its own. */
export type Answer = { status?: number; headers?: Record<string, string>; body?: unknown } | ((res: ServerResponse) => void);

/** An https server publishing Client ID Metadata Documents, recording every connection and request. */
export interface DocumentServer {
  /** https://127.0.0.1:<port> */
  origin: string;
  port: number;
  /** TCP connections accepted so far. */
  connections: number;
  /** Request paths, in order. */
  requests: string[];
  /** Requests of one path so far. */
  hits(path: string): number;
  serve(path: string, answer: Answer): void;
  close(): Promise<void>;
}

export async function startDocumentServer(certificate: TestCertificate): Promise<DocumentServer> {
  const answers = new Map<string, Answer>();
  const requests: string[] = [];
  const server = createServer({ key: certificate.key, cert: certificate.cert }, (req, res) => {
    const path = new URL(req.url ?? "/", "https://x").pathname;
    requests.push(path);
    const answer = answers.get(path) ?? { status: 404, body: { error: "not found" } };
    if (typeof answer === "function") return answer(res);
    const json = typeof answer.body !== "string";
    res.writeHead(answer.status ?? 200, { "content-type": json ? "application/json" : "text/plain", ...answer.headers });
    res.end(json ? JSON.stringify(answer.body ?? {}) : answer.body);
  });
  const result: DocumentServer = {
    origin: "",
    port: 0,
    connections: 0,
    requests,
    hits: (path) => requests.filter((p) => p === path).length,
    serve: (path, answer) => void answers.set(path, answer),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  server.on("connection", () => result.connections++);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  result.port = (server.address() as AddressInfo).port;
  result.origin = `https://127.0.0.1:${result.port}`;
  return result;
}

/** A valid metadata document for `url`: a public client redirecting to REDIRECT_URI, with `extra` on top. */
export const metadataDocument = (url: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  client_id: url,
  client_name: "Document Client",
  client_uri: new URL(url).origin,
  redirect_uris: [REDIRECT_URI],
  grant_types: ["authorization_code", "refresh_token"],
  response_types: ["code"],
  token_endpoint_auth_method: "none",
  ...extra,
});
