import { escapeHtml } from "../http.js";
import { appName, type SimApp, type SimUser } from "../options.js";
import type { PendingConsent } from "../store.js";

const layout = (title: string, main: string): string => `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",sans-serif;max-width:32rem;margin:3rem auto;color:#1f2328}
.box{border:1px solid #d1d9e0;border-radius:6px;padding:1.5rem}button{font-size:1rem;padding:.4rem 1rem;margin-right:.5rem}
.primary{background:#1f883d;color:#fff;border:0;border-radius:6px}.flash{color:#d1242f}</style></head>
<body><main>${main}</main><footer><p><small>GitHub simulator (offline)</small></p></footer></body>
</html>`;

export const notFoundPage = (): string => layout("Page not found · GitHub", `<h1>404</h1><p>This is not the web page you are looking for.</p>`);

/** What github.com shows for an unregistered redirect_uri (it does not redirect). */
export const beCarefulPage = (): string =>
  layout(
    "Redirect URI mismatch · GitHub",
    `<div class="box"><h2 class="flash">Be careful!</h2>
<p>The redirect_uri is not associated with this application.</p>
<p>The application might be misconfigured or could be trying to redirect you to a website you weren't expecting.</p></div>`,
  );

export const errorPage = (message: string): string =>
  layout("Authorization error · GitHub", `<div class="box"><h2 class="flash">Error</h2><p>${escapeHtml(message)}</p></div>`);

export const unprocessablePage = (): string => layout("Unprocessable Entity · GitHub", `<h1>422</h1><p>The change you wanted was rejected.</p>`);

export const serverErrorPage = (): string => layout("Unicorn! · GitHub", `<h1>502</h1><p>This page is taking too long to load. Sorry about that.</p>`);

export function consentPage(app: SimApp, user: SimUser, pending: PendingConsent): string {
  const scopes = pending.scopes.length
    ? `<ul>${pending.scopes.map((s) => `<li><code>${escapeHtml(s)}</code></li>`).join("")}</ul>`
    : `<p>Public information only (read-only).</p>`;
  return layout(
    `Authorize ${appName(app)}`,
    `<div class="box"><h2>Authorize ${escapeHtml(appName(app))}</h2>
<p>Signed in as <strong>${escapeHtml(user.login)}</strong>. This application will be able to:</p>${scopes}
<p>Authorizing will redirect to <code>${escapeHtml(pending.redirectTo)}</code></p>
<form method="post" action="/login/oauth/authorize/decide">
<input type="hidden" name="authorization_request" value="${escapeHtml(pending.id)}">
<button class="primary" type="submit" name="decision" value="authorize">Authorize</button>
<button type="submit" name="decision" value="cancel">Cancel</button>
</form></div>`,
  );
}
