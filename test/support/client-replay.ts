import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fetch } from "undici";
import { DEFAULT_APPS, startSimulator, type Simulator } from "../../src/simulator/index.js";
import { TestBrowser } from "./browser.js";
import { startDocumentServer, selfSignedCertificate, type DocumentServer, type TestCertificate } from "./https.js";
import { pkce } from "./manual.js";
import { freePort, killAll, startGatewayProcess, tempDir, type GatewayProcess } from "./processes.js";
import { LOGIN } from "./stack.js";

/**
 * Replaying real MCP clients at the HTTP level (../shared/reference/clients.md): each test file states
 * what one client family sends, and this file walks it the way every client does: a 401 challenge,
 * the protected-resource metadata it names, the authorization server that names, registration or a
 * Client ID Metadata Document, the browser step, the token request, and MCP calls with the token.
 */

/** How the gateway is run: the flags' single upstream, or a `--config` file with several. */
export type Mode = "single" | "config";
export const MODES: { mode: Mode; title: string }[] = [
  { mode: "single", title: "single upstream, no --public-url, typed as http://127.0.0.1:<port>/mcp" },
  { mode: "config", title: "--config with two upstreams and --public-url, http://127.0.0.1:<port>/mcp/github" },
];

export interface Target {
  mode: Mode;
  /** The MCP URL the user gave the client. */
  mcpUrl: string;
  gateway: GatewayProcess;
}

/**
 * One GitHub simulator, an https server for Client ID Metadata Documents and key sets (a test CA the
 * gateways trust through NODE_EXTRA_CA_CERTS), and a real gateway process per mode in front of the
 * simulator, both with `--allow-private-fetch` so they fetch documents from 127.0.0.1.
 */
export interface ReplayWorld {
  simulator: Simulator;
  documents: DocumentServer;
  targets: Record<Mode, Target>;
  close(): Promise<void>;
}

export async function startReplayWorld(): Promise<ReplayWorld> {
  const certificate: TestCertificate = selfSignedCertificate();
  const documents = await startDocumentServer(certificate);
  // The OAuth App knows both names the gateways call themselves by: localhost (no --public-url) and 127.0.0.1
  const app = {
    ...DEFAULT_APPS.find((a) => a.kind === "oauth_app")!,
    callbackUrls: ["http://127.0.0.1/upstream/callback", "http://localhost/upstream/callback"],
  };
  const simulator = await startSimulator({ apps: [app] });
  const env = {
    HOME: tempDir("client-replay-home"),
    NODE_EXTRA_CA_CERTS: certificate.certFile,
    MCP_GATEWAY_USERNAME: LOGIN.username,
    MCP_GATEWAY_PASSWORD: LOGIN.password,
  };
  const common = ["--store", "memory", "--allow-private-fetch", "true"];

  const single = async (): Promise<Target> => {
    const port = await freePort();
    const gateway = await startGatewayProcess(
      ["--port", String(port), ...common, "--upstream-rs", simulator.mcpUrl, "--upstream-client-id", app.clientId, "--upstream-api-url", simulator.apiOrigin],
      { ...env, MCP_GATEWAY_UPSTREAM_CLIENT_SECRET: app.clientSecrets[0] },
    );
    return { mode: "single", mcpUrl: `http://127.0.0.1:${port}/mcp`, gateway };
  };
  const config = async (): Promise<Target> => {
    const port = await freePort();
    const oauth = { clientId: app.clientId, clientSecret: "${SIM_GITHUB_SECRET}", apiUrl: simulator.apiOrigin };
    const file = join(tempDir("client-replay-config"), "gateway.json");
    const mcpServers = {
      github: { url: simulator.mcpUrl, title: "GitHub", oauth },
      "github-readonly": { url: simulator.mcpUrl, title: "GitHub (read-only)", oauth, headers: { "X-MCP-Readonly": "true" } },
    };
    writeFileSync(file, JSON.stringify({ mcpServers }, null, 2));
    const gateway = await startGatewayProcess(["--port", String(port), "--public-url", `http://127.0.0.1:${port}`, ...common, "--config", file], {
      ...env,
      SIM_GITHUB_SECRET: app.clientSecrets[0],
    });
    return { mode: "config", mcpUrl: `http://127.0.0.1:${port}/mcp/github`, gateway };
  };

  try {
    const [s, c] = await Promise.all([single(), config()]);
    return {
      simulator,
      documents,
      targets: { single: s, config: c },
      close: async () => {
        await Promise.all([s.gateway.kill(), c.gateway.kill()]);
        await documents.close();
        await simulator.close();
        certificate.remove();
      },
    };
  } catch (error) {
    killAll();
    await documents.close();
    await simulator.close();
    certificate.remove();
    throw error;
  }
}

// ---- discovery -------------------------------------------------------------------------------------

export interface ResourceMetadata {
  resource: string;
  authorization_servers: string[];
  scopes_supported?: string[];
}

export interface ServerMetadata {
  issuer: string;
  authorization_endpoint: string;
  token_endpoint: string;
  registration_endpoint: string;
  grant_types_supported: string[];
  token_endpoint_auth_methods_supported: string[];
  client_id_metadata_document_supported?: boolean;
  scopes_supported?: string[];
}

export interface Discovered {
  /** The 401's WWW-Authenticate header, as sent. */
  challenge: string;
  /** Its `scope` parameter, when it has one. */
  challengeScope?: string;
  resourceMetadataUrl: string;
  resource: ResourceMetadata;
  /** RFC 8414 metadata of `resource.authorization_servers[0]`, fetched at its path-inserted URL. */
  server: ServerMetadata;
  serverMetadataUrl: string;
}

const INITIALIZE = (protocolVersion: string, id = 1) => ({
  jsonrpc: "2.0",
  id,
  method: "initialize",
  params: { protocolVersion, capabilities: {}, clientInfo: { name: "replayed-client", version: "1.0.0" } },
});

/**
 * MCP Authorization §Authorization Server Discovery: POST to the MCP URL without a token, follow the
 * 401's `resource_metadata` (RFC 9728 §5.1), then the first authorization server's RFC 8414 metadata
 * (§3.1 path insertion). Throws, with what was received, at the first step that fails.
 */
export async function discover(mcpUrl: string): Promise<Discovered> {
  const first = await fetch(mcpUrl, { method: "POST", headers: mcpHeaders(), body: JSON.stringify(INITIALIZE("2025-06-18")), redirect: "manual" });
  const challenge = first.headers.get("www-authenticate") ?? "";
  if (first.status !== 401) throw new Error(`POST ${mcpUrl} without a token: expected 401, got ${first.status} ${first.headers.get("location") ?? ""}`);
  const metadataUrls = [...challenge.matchAll(/resource_metadata="([^"]*)"/g)].map((m) => m[1]!);
  if (metadataUrls.length !== 1) throw new Error(`expected one resource_metadata in the challenge, got: ${challenge}`);
  const resourceMetadataUrl = metadataUrls[0]!;
  const resource = await getJson<ResourceMetadata>(resourceMetadataUrl);
  const issuer = resource.authorization_servers?.[0];
  if (!issuer) throw new Error(`no authorization_servers in ${JSON.stringify(resource)}`);
  const u = new URL(issuer);
  const serverMetadataUrl = `${u.origin}/.well-known/oauth-authorization-server${u.pathname === "/" ? "" : u.pathname}`;
  const server = await getJson<ServerMetadata>(serverMetadataUrl);
  if (server.issuer !== issuer) throw new Error(`RFC 8414 §3.3: metadata at ${serverMetadataUrl} names issuer ${server.issuer}, not ${issuer}`);
  const challengeScope = /scope="([^"]*)"/.exec(challenge)?.[1];
  return { challenge, ...(challengeScope ? { challengeScope } : {}), resourceMetadataUrl, resource, server, serverMetadataUrl };
}

async function getJson<T>(url: string): Promise<T> {
  const response = await fetch(url, { headers: { accept: "application/json" } });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`GET ${url}: ${response.status} ${text.slice(0, 300)}`);
  return JSON.parse(text) as T;
}

// ---- the client's side of OAuth ------------------------------------------------------------------------

/** What a replayed client answers to: public (`none`), with a secret, or with a signed assertion. */
export type ClientAuthentication =
  | { method: "none" }
  | { method: "client_secret_post" | "client_secret_basic"; secret: string }
  /** RFC 7523 §2.2: a fresh signed JWT for each request to `tokenEndpoint`. */
  | { method: "private_key_jwt"; assertion: (tokenEndpoint: string) => Promise<string> };

export interface Client {
  clientId: string;
  auth: ClientAuthentication;
}

/** RFC 7591 §3: POST the client's own registration body; 201 and the client, or the refusal as it came. */
export async function registerClient(server: ServerMetadata, body: Record<string, unknown>) {
  const response = await fetch(server.registration_endpoint, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> & { client_id: string; client_secret?: string } };
}

/** Register, failing with the gateway's answer unless it is 201; the client as the response defines it. */
export async function registered(server: ServerMetadata, body: Record<string, unknown>): Promise<Client & { information: Record<string, unknown> }> {
  const { status, body: information } = await registerClient(server, body);
  if (status !== 201) throw new Error(`registration refused: ${status} ${JSON.stringify(information)}`);
  const method = (information.token_endpoint_auth_method as string | undefined) ?? "client_secret_basic";
  const auth: ClientAuthentication =
    method === "none" ? { method: "none" } : { method: method as "client_secret_post" | "client_secret_basic", secret: information.client_secret! };
  return { clientId: information.client_id, auth, information };
}

export interface AuthorizationRequest {
  url: string;
  redirectUri: string;
  state: string;
  verifier: string;
}

/**
 * The authorization request exactly as given: PKCE S256 and a random state are added, and parameters
 * set to undefined are left out (a client that sends no `resource` sends no `resource`).
 */
export function authorizationRequest(
  endpoint: string,
  params: { client_id: string; redirect_uri: string } & Record<string, string | undefined>,
): AuthorizationRequest {
  const { verifier, challenge } = pkce();
  const state = randomBytes(16).toString("base64url");
  const url = new URL(endpoint);
  const all: Record<string, string | undefined> = { response_type: "code", code_challenge: challenge, code_challenge_method: "S256", state, ...params };
  for (const [k, v] of Object.entries(all)) if (v !== undefined) url.searchParams.set(k, v);
  return { url: url.href, redirectUri: params.redirect_uri, state, verifier };
}

export interface AuthorizationResponse {
  /** Where the gateway sent the browser back to, read from the Location header (never followed). */
  redirect: URL;
  code: string;
  state: string | null;
  iss: string | null;
}

/**
 * The person signs in to the gateway, approves, and approves at the (simulated) GitHub. The walk ends
 * at the redirect to the client, which is read and not followed: a loopback listener, an app scheme and
 * claude.ai or chatgpt.com are the client's, not the test's.
 */
export async function signIn(request: AuthorizationRequest, browser = new TestBrowser()): Promise<AuthorizationResponse> {
  const redirect = await browser.authorize(request.url, { redirectUri: request.redirectUri, ...LOGIN });
  const code = redirect.searchParams.get("code");
  if (!code) throw new Error(`no code in ${redirect.href}`);
  return { redirect, code, state: redirect.searchParams.get("state"), iss: redirect.searchParams.get("iss") };
}

export interface TokenAnswer {
  status: number;
  body: { access_token?: string; refresh_token?: string; token_type?: string; expires_in?: number; scope?: string; error?: string; error_description?: string };
}

/** POST to the token endpoint with the client's authentication added as its method puts it. */
export async function tokenRequest(server: ServerMetadata, client: Client, form: Record<string, string | undefined>): Promise<TokenAnswer> {
  const headers: Record<string, string> = { "content-type": "application/x-www-form-urlencoded", accept: "application/json" };
  const body = new URLSearchParams();
  for (const [k, v] of Object.entries(form)) if (v !== undefined) body.set(k, v);
  const { auth } = client;
  if (auth.method === "client_secret_basic") {
    const enc = (s: string) => encodeURIComponent(s);
    headers.authorization = `Basic ${Buffer.from(`${enc(client.clientId)}:${enc(auth.secret)}`).toString("base64")}`;
  } else {
    body.set("client_id", client.clientId);
    if (auth.method === "client_secret_post") body.set("client_secret", auth.secret);
    if (auth.method === "private_key_jwt") {
      body.set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
      body.set("client_assertion", await auth.assertion(server.token_endpoint));
    }
  }
  const response = await fetch(server.token_endpoint, { method: "POST", headers, body: body.toString() });
  return { status: response.status, body: (await response.json()) as TokenAnswer["body"] };
}

/** RFC 6749 §4.1.3 (with RFC 7636 and, when given, RFC 8707 `resource`). */
export const redeemCode = (server: ServerMetadata, client: Client, request: AuthorizationRequest, code: string, resource?: string) =>
  tokenRequest(server, client, { grant_type: "authorization_code", code, code_verifier: request.verifier, redirect_uri: request.redirectUri, resource });

/** RFC 6749 §6. */
export const refreshWith = (server: ServerMetadata, client: Client, refreshToken: string, resource?: string) =>
  tokenRequest(server, client, { grant_type: "refresh_token", refresh_token: refreshToken, resource });

// ---- MCP with the token ------------------------------------------------------------------------------

const mcpHeaders = (extra: Record<string, string> = {}) => ({ "content-type": "application/json", accept: "application/json, text/event-stream", ...extra });

/** One JSON-RPC answer, from a JSON body or from the SSE stream the server chose to answer with. */
async function rpc(mcpUrl: string, headers: Record<string, string>, message: { id?: number } & Record<string, unknown>) {
  const response = await fetch(mcpUrl, { method: "POST", headers: mcpHeaders(headers), body: JSON.stringify(message), redirect: "manual" });
  const text = await response.text();
  if (response.status === 202 && message.id === undefined) return { response, result: undefined };
  if (response.status !== 200)
    throw new Error(`${String(message.method)} at ${mcpUrl}: HTTP ${response.status} ${response.headers.get("www-authenticate") ?? ""} ${text.slice(0, 300)}`);
  const messages = (response.headers.get("content-type") ?? "").startsWith("text/event-stream")
    ? text
        .split(/\r?\n\r?\n/)
        .map((event) =>
          event
            .split(/\r?\n/)
            .filter((l) => l.startsWith("data:"))
            .map((l) => l.slice(5).trimStart())
            .join("\n"),
        )
        .filter(Boolean)
        .map((data) => JSON.parse(data) as { id?: number; result?: unknown; error?: unknown })
    : [JSON.parse(text) as { id?: number; result?: unknown; error?: unknown }];
  const answer = messages.find((m) => m.id === message.id);
  if (!answer || answer.error) throw new Error(`${String(message.method)}: ${JSON.stringify(answer?.error ?? messages)}`);
  return { response, result: answer.result };
}

/**
 * What a client does with its token in the initialize era: `initialize`, `notifications/initialized`,
 * then `tools/call get_me` (the simulator's GitHub tool) in the session. Returns the GitHub login.
 */
export async function callGetMe(mcpUrl: string, accessToken: string, protocolVersion = "2025-06-18"): Promise<string> {
  const authorization = { authorization: `Bearer ${accessToken}` };
  const init = await rpc(mcpUrl, authorization, INITIALIZE(protocolVersion));
  const negotiated = (init.result as { protocolVersion: string }).protocolVersion;
  const sessionId = init.response.headers.get("mcp-session-id");
  const inSession = { ...authorization, "mcp-protocol-version": negotiated, ...(sessionId ? { "mcp-session-id": sessionId } : {}) };
  await rpc(mcpUrl, inSession, { jsonrpc: "2.0", method: "notifications/initialized" });
  const call = await rpc(mcpUrl, inSession, { jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "get_me", arguments: {} } });
  const result = call.result as { isError?: boolean; content: { type: string; text: string }[] };
  if (result.isError) throw new Error(`get_me failed: ${JSON.stringify(result.content)}`);
  return (JSON.parse(result.content[0]!.text) as { login: string }).login;
}

/** The status a bare POST with this token gets (200 when the token is good at this MCP URL). */
export async function mcpStatus(mcpUrl: string, accessToken: string): Promise<number> {
  const response = await fetch(mcpUrl, {
    method: "POST",
    headers: mcpHeaders({ authorization: `Bearer ${accessToken}` }),
    body: JSON.stringify(INITIALIZE("2025-06-18")),
  });
  await response.body?.cancel();
  return response.status;
}

// ---- Client ID Metadata Documents ------------------------------------------------------------------------

/**
 * Publish a client's metadata document at `path` on the test's https server, with `client_id` set to
 * where it lives (the real one is on claude.ai, vscode.dev, chatgpt.com or github.com); its URL.
 */
export function publishDocument(documents: DocumentServer, path: string, document: Record<string, unknown>): string {
  const url = `${documents.origin}${path}`;
  documents.serve(path, { body: { ...document, client_id: url } });
  return url;
}

/** A loopback port nobody listens on right now: what a client's callback listener would have picked. */
export const ephemeralPort = freePort;
