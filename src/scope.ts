/** RFC 6749 §3.3: the scope parameter, a space-delimited set of scope tokens. */

/** RFC 6749 §3.3: scope = scope-token *( SP scope-token ), scope-token = 1*( %x21 / %x23-5B / %x5D-7E ) */
export const isScope = (scope: string): boolean => /^[\x21\x23-\x5B\x5D-\x7E]+( [\x21\x23-\x5B\x5D-\x7E]+)*$/.test(scope);

/** The tokens of a scope, in order; none for an absent or empty one. */
export function scopeTokens(scope: string | undefined): string[] {
  return (scope ?? "").split(" ").filter(Boolean);
}

/** The first token of `scope` that `allowed` does not hold, if any (the order of tokens does not matter, RFC 6749 §3.3). */
export function firstOutside(scope: string, allowed: string): string | undefined {
  const held = new Set(scopeTokens(allowed));
  return scopeTokens(scope).find((token) => !held.has(token));
}

/** The tokens of all the scopes, each once, in the order first named. */
export function scopeUnion(...scopes: (string | undefined)[]): string {
  return [...new Set(scopes.flatMap(scopeTokens))].join(" ");
}

/** The tokens of a scope as configuration writes it: separated by spaces or commas. */
export function configuredScopeTokens(scope: string): string[] {
  return scope.split(/[\s,]+/).filter(Boolean);
}
