import { fetch, type Dispatcher } from "undici";

/**
 * A scripted browser for the human step: keeps cookies per host, follows redirects by hand, and
 * fills in Screen 1 when it meets it. A real browser drives the same pages in a later suite.
 */
export class TestBrowser {
  readonly #cookies = new Map<string, Map<string, string>>();
  /** Every URL this browser was sent to, in order. */
  readonly visited: string[] = [];

  /**
   * Headers sent with every request, e.g. `{ "sec-fetch-site": "none" }` for a navigation the user started;
   * `dispatcher` for pages served over TLS with a test certificate (an undici Agent with its `ca`).
   */
  constructor(
    readonly defaultHeaders: Record<string, string> = {},
    readonly options: { dispatcher?: Dispatcher } = {},
  ) {}

  /** The cookies this browser holds for `host` (host[:port], as in a URL). */
  cookies(host: string): Record<string, string> {
    return Object.fromEntries(this.#cookies.get(host) ?? []);
  }

  /** Set cookies for `host` as another page could: any other port of a loopback host can set cookies for it. */
  plant(host: string, cookies: Record<string, string>): void {
    const jar = this.#cookies.get(host) ?? new Map<string, string>();
    for (const [name, value] of Object.entries(cookies)) jar.set(name, value);
    this.#cookies.set(host, jar);
  }

  async request(url: string, init: { method?: string; form?: Record<string, string>; headers?: Record<string, string> } = {}) {
    const target = new URL(url);
    this.visited.push(target.href);
    // a form is posted from the page that showed it: a browser says same-origin, whatever started the navigation
    const posted: Record<string, string> = init.form && this.defaultHeaders["sec-fetch-site"] ? { "sec-fetch-site": "same-origin" } : {};
    const headers: Record<string, string> = { ...this.defaultHeaders, ...posted, ...init.headers };
    const jar = this.#cookies.get(target.host);
    if (jar?.size) headers.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
    let body: string | undefined;
    if (init.form) {
      headers["content-type"] = "application/x-www-form-urlencoded";
      body = new URLSearchParams(init.form).toString();
    }
    const { dispatcher } = this.options;
    const response = await fetch(target, {
      method: init.method ?? (body ? "POST" : "GET"),
      headers,
      body,
      redirect: "manual",
      ...(dispatcher ? { dispatcher } : {}),
    });
    for (const cookie of response.headers.getSetCookie()) {
      const [pair] = cookie.split(";");
      const eq = pair!.indexOf("=");
      const cookies = this.#cookies.get(target.host) ?? new Map<string, string>();
      cookies.set(pair!.slice(0, eq).trim(), pair!.slice(eq + 1).trim());
      this.#cookies.set(target.host, cookies);
    }
    const location = response.headers.get("location");
    return { status: response.status, location: location ? new URL(location, target).href : undefined, text: await response.text(), headers: response.headers };
  }

  /**
   * Walk from the client's authorization URL to the redirect back to the client, signing in and
   * deciding on Screen 1 (and on the upstream's consent page, when it shows one: the first button
   * approves, the second denies). Returns the URL the client would receive.
   */
  async authorize(authorizationUrl: string, opts: AuthorizeOptions): Promise<URL> {
    const end = await this.walk(authorizationUrl, opts);
    if ("redirect" in end) return end.redirect;
    throw new Error(`stuck at ${end.url}: HTTP ${end.status}\n${end.text.slice(0, 500)}`);
  }

  /** As `authorize`, but a page that is neither a redirect nor a form to fill, or the answer to a filled form that goes nowhere, ends the walk and is returned. */
  async walk(authorizationUrl: string, opts: AuthorizeOptions): Promise<{ redirect: URL } | { url: string; status: number; text: string }> {
    let url = authorizationUrl;
    for (let hop = 0; hop < 12; hop++) {
      if (url.startsWith(opts.redirectUri)) return { redirect: new URL(url) };
      const page = await this.request(url);
      if (page.location) {
        url = page.location;
        continue;
      }
      const form = loginForm(page.text);
      const action = /<form method="post" action="([^"]+)"/.exec(page.text)?.[1];
      const decisions = [...page.text.matchAll(/name="decision" value="([^"]+)"/g)].map((m) => m[1]!);
      if (page.status !== 200 || !form || !action) return { url, status: page.status, text: page.text };
      const credentials: Record<string, string> = page.text.includes('name="password"') ? { username: opts.username, password: opts.password } : {};
      const posted = new URL(action, url).href;
      const answer = await this.request(posted, {
        form: {
          ...form,
          ...credentials,
          ...(opts.remember && page.text.includes('name="remember"') ? { remember: "yes" } : {}),
          decision: decisions[opts.decision === "deny" ? 1 : 0]!,
        },
      });
      if (!answer.location) return { url: posted, status: answer.status, text: answer.text };
      url = answer.location;
    }
    throw new Error("too many redirects");
  }
}

export interface AuthorizeOptions {
  redirectUri: string;
  username: string;
  password: string;
  decision?: "approve" | "deny";
  remember?: boolean;
}

/**
 * The link back to the client on a page where the gateway stops instead of redirecting (a refusal,
 * a denial, an error for a client not approved before: RFC 9700 §4.11.2), with the host it names.
 */
export function returnLink(html: string): { url: URL; host: string } | undefined {
  const m = /<a href="([^"]+)">Return to your MCP client<\/a> at <code>([^<]*)<\/code>/.exec(html);
  return m ? { url: new URL(m[1]!.replaceAll("&amp;", "&")), host: m[2]! } : undefined;
}

/** The hidden inputs of Screen 1, or undefined when the page is not Screen 1. */
export function loginForm(html: string): Record<string, string> | undefined {
  if (!html.includes('name="decision"')) return undefined;
  const hidden: Record<string, string> = {};
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) hidden[m[1]!] = m[2]!;
  return hidden;
}
