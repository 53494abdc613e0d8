/** RFC 8414 metadata as github.com serves it: no registration, revocation or auth-method fields. */
export const authorizationServerMetadata = (web: string) => ({
  issuer: `${web}/login/oauth`,
  authorization_endpoint: `${web}/login/oauth/authorize`,
  token_endpoint: `${web}/login/oauth/access_token`,
  response_types_supported: ["code"],
  grant_types_supported: ["authorization_code", "refresh_token"],
  service_documentation: "https://docs.github.com/apps/creating-github-apps/registering-a-github-app/registering-a-github-app",
  code_challenge_methods_supported: ["S256"],
});

/** The Actions OIDC document GitHub serves here: useless for user login (no authorize/token/userinfo). */
export const actionsOpenIdConfiguration = (web: string) => ({
  issuer: "https://github.com",
  jwks_uri: `${web}/login/oauth/.well-known/jwks`,
  subject_types_supported: ["public", "pairwise"],
  response_types_supported: ["id_token"],
  claims_supported: ["sub", "aud", "exp", "nbf", "iat", "iss", "act"],
  id_token_signing_alg_values_supported: ["RS256"],
  scopes_supported: ["openid"],
});
