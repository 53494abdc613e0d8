/** GitHub OAuth App scopes (docs: scopes-for-oauth-apps) and what each one implies. */
const CHILDREN: Record<string, string[]> = {
  repo: ["repo:status", "repo_deployment", "public_repo", "repo:invite", "security_events"],
  "admin:org": ["write:org"],
  "write:org": ["read:org"],
  "admin:repo_hook": ["write:repo_hook"],
  "write:repo_hook": ["read:repo_hook"],
  "admin:public_key": ["write:public_key"],
  "write:public_key": ["read:public_key"],
  "admin:gpg_key": ["write:gpg_key"],
  "write:gpg_key": ["read:gpg_key"],
  user: ["read:user", "user:email", "user:follow"],
  project: ["read:project"],
  "write:packages": ["read:packages"],
};

const LEAVES = ["admin:org_hook", "gist", "notifications", "delete_repo", "delete:packages", "codespace", "workflow", "read:audit_log"];

export const KNOWN_SCOPES: ReadonlySet<string> = new Set([...Object.keys(CHILDREN), ...Object.values(CHILDREN).flat(), ...LEAVES]);

/** `scope` request parameter: GitHub splits on spaces and commas alike. */
export function parseScopeParam(raw: string): string[] {
  return raw.split(/[\s,]+/).filter((s) => s.length > 0);
}

/** Every scope granted by holding `scopes`, following the hierarchy transitively. */
export function expandScopes(scopes: Iterable<string>): Set<string> {
  const out = new Set<string>();
  const pending = [...scopes];
  for (let s = pending.pop(); s !== undefined; s = pending.pop()) {
    if (out.has(s)) continue;
    out.add(s);
    pending.push(...(CHILDREN[s] ?? []));
  }
  return out;
}

/** Docs: "requesting user,gist,user:email results in a token with user and gist scopes only". */
export function normalizeScopes(requested: Iterable<string>): string[] {
  const known = [...new Set(requested)].filter((s) => KNOWN_SCOPES.has(s));
  return known.filter((s) => !known.some((other) => other !== s && expandScopes([other]).has(s))).sort();
}

export const coversScopes = (granted: Iterable<string>, needed: Iterable<string>): boolean => {
  const have = expandScopes(granted);
  return [...needed].every((s) => have.has(s));
};
