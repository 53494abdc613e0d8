import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { SUITE, type Check } from "../support/conformance.js";
import { killAll, launch, NODE22, tempDir } from "../support/processes.js";

/**
 * The official conformance suite's client-side `auth/*` scenarios with the gateway as the OAuth client:
 * each scenario's mock MCP server is the gateway's `--upstream-rs` (with the credentials the scenario
 * pre-registers), and the real MCP SDK client signs in at the gateway and calls a tool through it
 * (test/support/conformance-client.ts). The suite's mocks listen on every interface, so each run is in
 * a network namespace of its own with only loopback (`unshare -n`).
 */

/** Scenarios where the right client refuses to go on: the checks say it refused at the right step. */
const REFUSED: Record<string, RegExp> = {
  "resource-mismatch": /publishes RFC 9728 metadata for another resource \(https:\/\/evil\.example\.com\/mcp\)/,
  "iss-supported-missing": /response parameter "iss" \(issuer\) missing/,
  "iss-wrong-issuer": /unexpected "iss" \(issuer\) response parameter value/,
  "iss-unexpected": /unexpected "iss" \(issuer\) response parameter value/,
  "iss-normalized": /unexpected "iss" \(issuer\) response parameter value/,
  "metadata-issuer-mismatch": /"issuer" property does not match the expected value/,
  // the upstream never grants the scope: the SDK client stops after one step-up
  "scope-retry-limit": /403 after trying upscoping/,
};

const SCENARIOS = [
  "metadata-default",
  "metadata-var1",
  "metadata-var2",
  "metadata-var3",
  "basic-cimd",
  "scope-from-www-authenticate",
  "scope-from-scopes-supported",
  "scope-omitted-when-undefined",
  "scope-step-up",
  "scope-retry-limit",
  "token-endpoint-auth-basic",
  "token-endpoint-auth-post",
  "token-endpoint-auth-none",
  "pre-registration",
  "2025-03-26-oauth-metadata-backcompat",
  "2025-03-26-oauth-endpoint-fallback",
  "resource-mismatch",
  "offline-access-scope",
  "offline-access-not-supported",
  "authorization-server-migration",
  "iss-supported",
  "iss-not-advertised",
  "iss-supported-missing",
  "iss-wrong-issuer",
  "iss-unexpected",
  "iss-normalized",
  "metadata-issuer-mismatch",
];

const DRIVER = `${process.execPath} --import tsx test/support/conformance-client.ts`;

interface ClientRun {
  code: number | null;
  output: string;
  checks: Check[];
  /** What the driver (the gateway and the SDK client) printed. */
  client: string;
}

/** `conformance client --scenario auth/<name>` in a loopback-only network namespace. */
async function runScenario(name: string): Promise<ClientRun> {
  const dir = tempDir("conformance-client");
  const suite = [NODE22, SUITE, "client", "--command", `'${DRIVER}'`, "--scenario", `auth/${name}`, "--timeout", "60000", "-o", dir].join(" ");
  const run = launch("unshare", ["-n", "sh", "-c", `ip link set lo up && exec ${suite}`], process.env);
  const { code } = await run.exited;
  const [saved] = readdirSync(join(dir, "auth")).filter((d) => d.startsWith(`${name}-`));
  if (!saved) throw new Error(`the suite saved nothing for ${name}:\n${run.stdout()}${run.stderr()}`);
  const at = (file: string) => readFileSync(join(dir, "auth", saved, file), "utf8");
  const checks = (JSON.parse(at("checks.json")) as Omit<Check, "scenario">[]).map((c) => ({ ...c, scenario: `auth/${name}` }));
  return { code, output: run.stdout() + run.stderr(), checks, client: at("stdout.txt") + at("stderr.txt") };
}

afterAll(killAll);

describe("official conformance suite: client auth scenarios with the gateway as the upstream's OAuth client", () => {
  for (const name of SCENARIOS) {
    it(`auth/${name}`, async () => {
      const run = await runScenario(name);
      const verdicts = run.checks.filter((c) => c.status !== "INFO").map((c) => `${c.id}: ${c.status}`);
      expect(verdicts, run.client).toEqual(verdicts.map((v) => `${v.split(":")[0]}: SUCCESS`));
      expect(verdicts.length).toBeGreaterThan(0);
      const refusal = REFUSED[name];
      if (refusal) {
        expect(run.client).not.toMatch(/called \S+ through the gateway/);
        expect(run.client).toMatch(refusal);
      } else {
        expect(run.client).toMatch(/called test-tool through the gateway/);
      }
      expect(run.code, run.output).toBe(0);
    }, 90_000);
  }
});
