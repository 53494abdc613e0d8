import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { loadConfig } from "../../src/config/load.js";
import { startGateway, type Gateway } from "../../src/gateway.js";
import { silentLogger } from "../../src/log.js";
import { hashPassword } from "../../src/login/passwords.js";
import { DEFAULT_APPS, startSimulator, type Simulator, type SimUser } from "../../src/simulator/index.js";
import { grantFor, mcpInitialize, refreshFor } from "../support/oauth-steps.js";
import { startMultiStack, type MultiStack } from "../support/multi-stack.js";
import { freePort, killAll, launch, startGatewayProcess, tempDir, cleanEnv, type GatewayProcess } from "../support/processes.js";
import { startStack, type Stack } from "../support/stack.js";

/** docs/security.md RU1: a user or client the operator removed loses its grants; no grant outlives the grant lifetime. */

const ALICE = { username: "alice", password: "correct horse battery staple" };
const BOB = { username: "bob", password: "tr0ub4dor&3 tr0ub4dor&3" };
const app = DEFAULT_APPS.find((a) => a.kind === "oauth_app")!;

async function writeUsers(path: string, users: { username: string; password: string }[]): Promise<void> {
  const lines = await Promise.all(users.map(async (u) => `${u.username}:${await hashPassword(u.password)}`));
  writeFileSync(path, `${lines.join("\n")}\n`);
}

/** A public client, signed in as `user` at the gateway `gw` and redeemed: its tokens and the upstream token sealed in them. */
async function grantAs(gw: string, simulator: Simulator, user: { username: string; password: string }, resource = `${gw}/mcp`) {
  const granted = await grantFor(gw, resource, undefined, user);
  return { ...granted, upstreamAccess: simulator.issuedTokens().access.at(-1)! };
}

type Granted = Awaited<ReturnType<typeof grantAs>>;
const refresh = (gw: string, g: Granted) => refreshFor(gw, g.clientId, g.tokens.refresh_token!);
const mcpStatus = async (mcpUrl: string, g: Granted) => (await mcpInitialize(mcpUrl, `Bearer ${g.tokens.access_token}`)).status;
const atGitHub = (simulator: Simulator, token: string) =>
  fetch(`${simulator.apiOrigin}/user`, { headers: { authorization: `Bearer ${token}`, "user-agent": "test" } }).then((r) => r.status);

describe("RU1 a user removed from the users file", () => {
  let simulator: Simulator;
  let gateway: Gateway | undefined;
  const clock = new ManualClock();
  const dir = tempDir("gateway-removed-user");
  const usersFile = join(dir, "users");
  const dataDir = join(dir, "data");
  let gw: string;
  let start: () => Promise<Gateway>;

  beforeAll(async () => {
    simulator = await startSimulator({ clock });
    const port = await freePort();
    gw = `http://127.0.0.1:${port}`;
    // every start reads the users file again, on the same SQLite store
    start = async () =>
      (gateway = await startGateway(
        loadConfig(
          [
            ...["--port", String(port), "--public-url", gw, "--store", "sqlite", "--data-dir", dataDir, "--users-file", usersFile],
            ...["--upstream-rs", simulator.mcpUrl, "--upstream-api-url", simulator.apiOrigin, "--upstream-client-id", app.clientId],
          ],
          { MCP_GATEWAY_ENV_FILE: "/dev/null", MCP_GATEWAY_UPSTREAM_CLIENT_SECRET: app.clientSecrets[0] },
        ),
        { clock, log: silentLogger },
      ));
  });
  afterAll(async () => {
    await gateway?.close();
    await simulator?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("RU1 cannot refresh once the gateway restarts without them, and their upstream token is given back; other users go on", async () => {
    await writeUsers(usersFile, [ALICE, BOB]);
    await start();
    const alice = await grantAs(gw, simulator, ALICE);
    let bob = await grantAs(gw, simulator, BOB);
    const before = await refresh(gw, bob); // the users file is read at start: bob is still a user here
    expect(before.status).toBe(200);
    bob = { ...bob, tokens: before.body };

    await gateway!.close();
    await writeUsers(usersFile, [ALICE]);
    await start();
    const bobAgain = await refresh(gw, bob);
    expect(bobAgain.status).toBe(400);
    expect(bobAgain.body.error).toBe("invalid_grant");
    expect(bobAgain.body.error_description).toContain("bob no longer exists");
    expect(await atGitHub(simulator, bob.upstreamAccess)).toBe(401);

    const aliceAgain = await refresh(gw, alice);
    expect(aliceAgain.status).toBe(200);
    expect(await mcpStatus(`${gw}/mcp`, { ...alice, tokens: aliceAgain.body })).toBe(200);
    expect(await atGitHub(simulator, alice.upstreamAccess)).toBe(200);
  });
});

describe("RU1 the grant lifetime", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ config: { grantLifetime: 3600 } }); // an hour from sign-in, the least that is not the access token's own
  });
  afterAll(() => stack?.close());

  it("RU1 ends a grant an hour after sign-in however often it was refreshed; no token it issued outlives that", async () => {
    const gw = stack.gateway.publicUrl;
    let g = await grantAs(gw, stack.simulator, ALICE);
    for (const expiresIn of [2400, 1200]) {
      stack.clock.advance(20 * 60_000);
      const next = await refresh(gw, g);
      expect(next.status).toBe(200);
      expect(Number(next.body.expires_in)).toBe(expiresIn); // capped at the grant's end, not a full hour on
      g = { ...g, tokens: next.body };
    }
    expect(await mcpStatus(stack.mcpUrl, g)).toBe(200);
    stack.clock.advance(20 * 60_000);
    expect(await mcpStatus(stack.mcpUrl, g)).toBe(401);
    const over = await refresh(gw, g);
    expect([over.status, over.body.error]).toEqual([400, "invalid_grant"]);

    // signing in again starts a new grant
    const fresh = await grantAs(gw, stack.simulator, ALICE);
    expect(await mcpStatus(stack.mcpUrl, fresh)).toBe(200);
  });
});

describe("RU1 the allowlists at refresh", () => {
  const users: SimUser[] = [{ id: 1002, login: "mona", orgs: [{ login: "acme", id: 9001, role: "member", state: "active" }] }];
  let stack: MultiStack;
  beforeAll(async () => {
    stack = await startMultiStack({ simulator: { users }, github: { allowOrgs: ["acme"] } });
  }, 60_000);
  afterAll(() => stack?.close());

  it("RU1 a user who left the listed organisation cannot refresh: membership is asked of GitHub with the grant's upstream token", async () => {
    const gw = stack.gateway.publicUrl;
    const g = await grantAs(gw, stack.simulator, ALICE, stack.urls.github);
    expect((await refresh(gw, g)).status).toBe(200);

    users[0]!.orgs = [];
    const checked = stack.simulator.requests.filter((r) => r.path === "/user/memberships/orgs/acme").length;
    const left = await refresh(gw, g);
    expect(stack.simulator.requests.filter((r) => r.path === "/user/memberships/orgs/acme").length).toBe(checked + 1);
    expect([left.status, left.body.error]).toEqual([400, "invalid_grant"]);
    expect(left.body.error_description).toContain("mona may not use");
    expect(await mcpStatus(stack.urls.github, g)).toBe(401);
    expect(await atGitHub(stack.simulator, g.upstreamAccess)).toBe(401);
  });
});

describe("RU1 mcp-oauth-gateway revoke, against a running gateway's SQLite store", () => {
  let simulator: Simulator;
  let gateway: GatewayProcess;
  const home = tempDir("gateway-revoke-home");
  const dir = tempDir("gateway-revoke");
  const usersFile = join(dir, "users");
  let args: string[];
  const env = { HOME: home, MCP_GATEWAY_UPSTREAM_CLIENT_SECRET: app.clientSecrets[0], MCP_GATEWAY_USERS_FILE: usersFile };

  beforeAll(async () => {
    simulator = await startSimulator({ clock: new ManualClock() });
    await writeUsers(usersFile, [ALICE, BOB]);
    const port = await freePort();
    args = [
      ...["--port", String(port), "--public-url", `http://127.0.0.1:${port}`, "--data-dir", join(dir, "data")],
      ...["--upstream-rs", simulator.mcpUrl, "--upstream-api-url", simulator.apiOrigin, "--upstream-client-id", app.clientId],
    ];
    gateway = await startGatewayProcess(args, env);
  }, 60_000);
  afterAll(async () => {
    killAll();
    await simulator?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function revokeCli(extra: string[]) {
    const p = launch(process.execPath, ["--import", "tsx", "src/main.ts", "revoke", ...extra, ...args], cleanEnv(env));
    const { code } = await p.exited;
    return { code, stdout: p.stdout(), stderr: p.stderr() };
  }

  it("RU1 `revoke --user bob` ends bob's grants at /mcp and at refresh while alice's keep working, and gives bob's upstream token back when it comes", async () => {
    const gw = gateway.url;
    const alice = await grantAs(gw, simulator, ALICE);
    const bob = [await grantAs(gw, simulator, BOB), await grantAs(gw, simulator, BOB)];
    expect(await Promise.all([alice, ...bob].map((g) => mcpStatus(`${gw}/mcp`, g)))).toEqual([200, 200, 200]);

    const ended = await revokeCli(["--user", "bob"]);
    expect(ended.stderr).toBe("");
    expect(ended.code).toBe(0);
    expect(ended.stdout).toContain("Ended 2 grants of user bob");
    for (const g of bob) expect(ended.stdout).toContain(`user bob, client ${g.clientId}`);
    expect(ended.stdout).not.toContain(alice.clientId);

    for (const g of bob) {
      // another process revoked: the gateway's revocation view learns of it within 1 s (docs/security.md RU5)
      expect(await statusWithin(1000, () => mcpStatus(`${gw}/mcp`, g), 401)).toBe(401);
      const refused = await refresh(gw, g);
      expect([refused.status, refused.body.error]).toEqual([400, "invalid_grant"]);
      expect(await atGitHub(simulator, g.upstreamAccess)).toBe(401);
    }
    expect(await mcpStatus(`${gw}/mcp`, alice)).toBe(200);
    expect((await refresh(gw, alice)).status).toBe(200);
    expect(await atGitHub(simulator, alice.upstreamAccess)).toBe(200);

    // nothing left to end; a client id ends that client's grants
    expect((await revokeCli(["--user", "bob"])).stdout).toContain("No live grants of user bob");
    // `=`: a generated client id may start with "-" (base64url), which the parser would take for an option
    const byClient = await revokeCli([`--client=${alice.clientId}`]);
    expect([byClient.code, byClient.stdout.includes("Ended 1 grant of client")]).toEqual([0, true]);
    expect(await statusWithin(1000, () => mcpStatus(`${gw}/mcp`, alice), 401)).toBe(401);
  }, 60_000);
});

/** The status once it is `wanted`, or the last one seen when `ms` have passed. */
async function statusWithin(ms: number, read: () => Promise<number>, wanted: number): Promise<number> {
  const deadline = Date.now() + ms;
  for (;;) {
    const status = await read();
    if (status === wanted || Date.now() >= deadline) return status;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
