import { readFileSync } from "node:fs";
import type { Config } from "./config/types.js";
import { startGateway, type Gateway } from "./gateway.js";
import type { Logger } from "./log.js";
import { describeLogin } from "./login/users.js";
import type { PublicOrigins } from "./origins.js";
import { describeStore } from "./store/open.js";
import { importSigningKey } from "./upstream/client-auth.js";

export const version = (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version;

/**
 * The gateway in front of the configured upstreams, listening. `announce` logs what each upstream
 * needs (its private key's public JWK, what discovery found): once per deployment, so with
 * --workers only the first worker does.
 */
export async function serve(config: Readonly<Config>, log: Logger, announce = true): Promise<Gateway> {
  const gateway = await startGateway(config, { log });
  if (!announce) return gateway;
  for (const mount of gateway.mounts.all) {
    if (mount.config.privateKey)
      importSigningKey(mount.config.privateKey).then(
        ({ publicJwk }) =>
          log.info(`${mount.label}: private_key_jwt with the key whose public JWK is ${JSON.stringify(publicJwk)} (register it at the upstream with this kid)`),
        (error: unknown) => log.error(`${mount.label}: the private key cannot be used`, error),
      );
    mount.describe().then(
      (how) => log.info(`${mount.label}: ${how}`),
      (error: unknown) => log.warn(`${mount.label}: discovery failed, will retry on first use: ${(error as Error).message}`),
    );
  }
  return gateway;
}

/** What an operator needs on start: the URL for clients, the callback to register upstream, the login. */
export function startupBanner(config: Readonly<Config>, gateway: Pick<Gateway, "listenUrl" | "keySource" | "mounts">): string {
  const login = describeLogin(config.login);
  return [
    `mcp-oauth-gateway ${version} listening on ${gateway.listenUrl}`,
    ...gateway.mounts.describe(),
    ...loopbackNames(gateway.mounts.origins),
    `  Gateway login:          ${login.login}`,
    ...(login.password === undefined ? [] : [`  Gateway password:       ${login.password}`]),
    `  State:                  ${describeStore(config.store)}`,
    `  Token keys:             ${gateway.keySource === "environment" ? "from MCP_GATEWAY_SECRET" : "master secret generated once and kept in the store"}${config.previousSecrets.length ? ` (+${config.previousSecrets.length} previous, verify only)` : ""}`,
  ].join("\n");
}

/** The aliases of the canonical name (src/origins.ts), when there are any. */
function loopbackNames(origins: PublicOrigins): string[] {
  const aliases = origins.all.slice(1).map((origin) => new URL(origin).hostname);
  return aliases.length ? [`  Loopback names:         ${aliases.join(" and ")} work in place of localhost in these URLs`] : [];
}
