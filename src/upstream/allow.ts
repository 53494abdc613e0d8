import type { UpstreamConfig } from "../config/types.js";
import type { OAuthErrorCode } from "../errors.js";
import type { Logger } from "../log.js";
import type { UpstreamTokens } from "../grants/format.js";
import type { CodeExchange } from "./client.js";
import type { Membership, UpstreamIdentity } from "./identity.js";
import type { Mount } from "./mounts.js";

/** Why a user may not pass: what the page says, and the error the client hears (RFC 6749 §4.1.2.1). */
export interface Refusal {
  error: Extract<OAuthErrorCode, "access_denied" | "temporarily_unavailable">;
  reason: string;
  /** What the user (or an admin) can do about it. */
  hint?: string;
}

const denied = (reason: string, hint?: string): Refusal => ({ error: "access_denied", reason, ...(hint ? { hint } : {}) });

/** `allowUsers` of an upstream without a leg of its own (static credentials, none): gateway user names. */
export function gatewayUserRefusal(config: UpstreamConfig, user: string): Refusal | undefined {
  if (config.allowOrgs.length) return denied(`${config.title} checks GitHub organisations, which needs an upstream that signs users in with GitHub.`);
  if (config.allowUsers.length && !config.allowUsers.includes(user)) return denied(`The gateway user ${user} may not use ${config.title}.`);
  return undefined;
}

/**
 * Who the user is upstream, and whether the allowlists let them pass: a listed user, or an active
 * member of a listed GitHub organisation. Without allowlists or identity headers, identity is best effort.
 */
export async function whoMayPass(
  mount: Mount,
  exchange: CodeExchange,
  log: Pick<Logger, "warn">,
): Promise<{ identity?: UpstreamIdentity } | { refusal: Refusal }> {
  const { allowUsers, allowOrgs, title } = mount.config;
  const guarded = allowUsers.length > 0 || allowOrgs.length > 0;
  let identity: UpstreamIdentity | undefined;
  try {
    identity = await mount.client.identity(exchange);
  } catch (error) {
    // with identity headers on, a grant made now would lack them for the whole of its life
    if (!guarded && !mount.config.identityHeaders) {
      log.warn(`cannot learn the upstream identity for ${mount.resource}: ${(error as Error).message}`);
      return {};
    }
    return {
      refusal: { error: "temporarily_unavailable", reason: `The gateway could not ask ${title} who you are, which it needs to know before it lets you pass.` },
    };
  }
  if (!guarded) return identity ? { identity } : {};
  if (!identity) return { refusal: denied(`${title} does not tell the gateway who you are, so its allowlist cannot be checked.`) };
  if (listed(allowUsers, identity)) return { identity };
  const web = allowOrgs.length ? await mount.client.githubWeb() : undefined;
  if (allowOrgs.length && !web) return { refusal: denied(`${title} lists organisations, which only an upstream that signs users in with GitHub can check.`) };

  const refusal = await orgRefusal(mount, exchange.tokens, identity, web);
  return refusal ? { refusal } : { identity };
}

/**
 * The allowlists again, at every refresh of a grant (docs/security.md RU1): the gateway user for an
 * upstream without a leg of its own; else the upstream identity the grant recorded at sign-in, and
 * for `allowOrgs` the user's membership now, asked of GitHub with the grant's fresh upstream token.
 */
export async function stillAllowed(mount: Mount, grant: { sub: string; identity?: UpstreamIdentity }, tokens: UpstreamTokens): Promise<Refusal | undefined> {
  if (!tokens.access_token) return gatewayUserRefusal(mount.config, grant.sub);
  const { allowUsers, allowOrgs, title } = mount.config;
  if (!allowUsers.length && !allowOrgs.length) return undefined;
  const { identity } = grant;
  if (!identity) return denied(`${title} now has an allowlist, and this grant does not record who you are there.`);
  if (listed(allowUsers, identity)) return undefined;
  if (!allowOrgs.length) return denied(`${describe(identity)} is no longer allowed to use ${title} through this gateway.`);
  const web = await mount.client.githubWeb().catch(() => null);
  if (web === null) return { error: "temporarily_unavailable", reason: `The gateway could not reach ${title} to check the organisations it lists.` };
  if (!web) return denied(`${title} lists organisations, which only an upstream that signs users in with GitHub can check.`);
  return orgRefusal(mount, tokens, identity, web);
}

/** Active membership of one listed organisation lets the user pass; the first check that fails stops (fail closed). */
async function orgRefusal(mount: Mount, tokens: UpstreamTokens, identity: UpstreamIdentity, web: string | undefined): Promise<Refusal | undefined> {
  const { allowOrgs, title } = mount.config;
  const memberships: [string, Membership][] = [];
  for (const org of allowOrgs) {
    const membership = await mount.client.membership(tokens, org).catch(() => undefined);
    if (membership === undefined) return { error: "temporarily_unavailable", reason: `The gateway could not check your membership of ${org} at ${title}.` };
    if (membership === "active") return undefined;
    memberships.push([org, membership]);
  }
  return denied(`${describe(identity)} may not use ${title} through this gateway.`, hint(memberships, web));
}

/** GitHub logins ignore case, as GitHub does; OIDC `sub` is exact; a (verified) email ignores case. */
function listed(allowUsers: readonly string[], identity: UpstreamIdentity): boolean {
  const lower = (s: string | undefined) => s?.toLowerCase();
  return allowUsers.some(
    (entry) =>
      (identity.login !== undefined && lower(entry) === lower(identity.login)) ||
      (identity.login === undefined && entry === identity.sub) ||
      (identity.email !== undefined && lower(entry) === lower(identity.email)),
  );
}

const describe = (identity: UpstreamIdentity): string =>
  identity.login ? `GitHub user ${identity.login}` : `The account ${identity.email ?? identity.preferred_username ?? identity.sub ?? "you signed in with"}`;

function hint(memberships: [string, Membership][], web = "https://github.com"): string | undefined {
  const notes = memberships.flatMap(([org, membership]) => {
    if (membership === "pending") return [`Your invitation to ${org} is still pending: accept it on GitHub, then sign in again.`];
    if (membership === "restricted")
      return [
        `${org} restricts third-party OAuth apps and has not approved this gateway's app, so your membership cannot be seen: an owner of ${org} can approve it at ${web}/organizations/${org}/settings/oauth_application_policy.`,
      ];
    return [];
  });
  return notes.length ? notes.join(" ") : undefined;
}
