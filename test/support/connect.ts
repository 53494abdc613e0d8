import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { TestBrowser } from "./browser.js";
import { RecordingOAuthProvider } from "./oauth-client.js";
import { LOGIN } from "./config.js";

/**
 * What a real MCP client does against a URL it knows nothing else about: connect, get 401, discover,
 * register, send the user through the browser, finish with the code, connect again.
 */
export async function connectWithOAuth(mcpUrl: string, opts: { provider?: RecordingOAuthProvider; browser?: TestBrowser } = {}) {
  const provider = opts.provider ?? new RecordingOAuthProvider();
  const browser = opts.browser ?? new TestBrowser();
  const client = new Client({ name: "e2e", version: "1.0.0" });
  const first = new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider });
  const refused = await client.connect(first).then(
    () => undefined,
    (error: unknown) => error,
  );
  if (!(refused instanceof UnauthorizedError)) throw new Error(`expected the first connect to need authorization, got ${String(refused)}`);
  const redirect = await browser.authorize(provider.authorizationUrl!.href, { redirectUri: provider.redirectUrl, ...LOGIN });
  const code = redirect.searchParams.get("code");
  if (!code) throw new Error(`no code in ${redirect.href}`);
  await first.finishAuth(code);
  const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider });
  await client.connect(transport);
  return { client, provider, browser, redirect, transport };
}

/**
 * A client that signs in whenever the gateway asks: `authorized(call)` runs `call`, and when it fails
 * for want of authorization (a 401, or a step-up 403 after which the SDK starts a new sign-in), walks
 * `browser` through that sign-in, finishes it on the current transport, and runs `call` again; at most
 * `max` sign-ins in all.
 */
export function signingIn(provider: RecordingOAuthProvider, browser: TestBrowser, transport: () => StreamableHTTPClientTransport, max = 3) {
  let signIns = 0;
  async function authorized<T>(call: () => Promise<T>): Promise<T> {
    for (;;) {
      try {
        return await call();
      } catch (error) {
        if (!(error instanceof UnauthorizedError) || !provider.authorizationUrl) throw error;
        if (++signIns > max) throw new Error(`still unauthorized after ${max} sign-ins`, { cause: error });
        const redirect = await browser.authorize(provider.authorizationUrl.href, { redirectUri: provider.redirectUrl, ...LOGIN });
        provider.authorizationUrl = undefined;
        const code = redirect.searchParams.get("code");
        if (!code) throw new Error(`no code in ${redirect.href}`, { cause: error });
        await transport().finishAuth(code);
      }
    }
  }
  return { authorized, signIns: () => signIns };
}

/**
 * `tools/call get_me` (the simulator's GitHub tool) through a connected SDK client: the user it names.
 * A tool error fails with its content and `said()` (what the processes behind the client printed).
 */
export async function getMe(client: Client, said: () => string = () => ""): Promise<{ login: string }> {
  const result = await client.callTool({ name: "get_me", arguments: {} });
  if (result.isError) throw new Error(`get_me failed: ${JSON.stringify(result.content)}\n${said()}`);
  return JSON.parse((result.content as { type: string; text: string }[])[0]!.text) as { login: string };
}

/** Call get_me through `<gatewayUrl>/mcp` with a fixed bearer token, as an MCP client holding one does. */
export async function callGetMe(gatewayUrl: string, accessToken: string): Promise<{ login: string }> {
  const client = new Client({ name: "e2e-bearer", version: "1.0.0" });
  const transport = new StreamableHTTPClientTransport(new URL(`${gatewayUrl}/mcp`), { requestInit: { headers: { authorization: `Bearer ${accessToken}` } } });
  await client.connect(transport);
  try {
    return await getMe(client);
  } finally {
    await client.close();
  }
}
