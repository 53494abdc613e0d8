import { METHODS, type IncomingMessage, type ServerResponse } from "node:http";

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string, detail?: unknown): void;
  /**
   * One access line from fields the gateway vouches for (a method from Node's list, a path of its own
   * configuration, numbers), written without the redaction pass: no client text ever reaches it.
   */
  access?(method: string, path: string, status: number, ms: number): void;
}

/**
 * Anything that looks like a credential is cut from every line: bearer values, our token halves,
 * GitHub-style tokens, and values of parameters that carry secrets.
 */
const SECRET_FIELDS = "code|state|access_token|refresh_token|client_secret|registration_access_token|password|code_verifier|token|csrf";

const SECRETS: ReadonlyArray<[RegExp, string]> = [
  [/\b(Bearer|Basic)\s+[\x21-\x7E]+/gi, "$1 [redacted]"],
  // JWS/JWE compact and our concatenated tokens (R~V too); each match starts a run, so redaction stays linear
  [/(?<![\w-])[\w-]*~?\beyJ[\w-]*\.[\w.~-]+/g, "[redacted]"],
  [/(?<![\w-])[\w-]{16,}~[\w.-]{16,}/g, "[redacted]"], // any two halves joined by our separator
  [/\b(gh[opusr]_|github_pat_)[\w-]+/g, "[redacted]"], // a test or forged token may go on with "-"
  [new RegExp(`\\b(${SECRET_FIELDS})=[^&\\s"]+`, "gi"), "$1=[redacted]"],
  [new RegExp(`"(${SECRET_FIELDS})"(\\s*:\\s*)"(?:[^"\\\\]|\\\\.)*"`, "gi"), '"$1"$2"[redacted]"'], // the same fields in JSON
];

export const redact = (line: string): string => SECRETS.reduce((s, [re, replacement]) => s.replace(re, replacement), line);

const describe = (detail: unknown): string => {
  if (detail instanceof Error) return `${detail.name}: ${detail.message}${detail.cause instanceof Error ? ` (cause: ${detail.cause.message})` : ""}`;
  return detail === undefined ? "" : typeof detail === "string" ? detail : JSON.stringify(detail);
};

/** stderr with one write per turn of the event loop, however many lines: a busy proxy does not pay a syscall per request. */
function batchedStderr(): (line: string) => void {
  let pending: string[] = [];
  const flush = () => {
    const text = pending.join("");
    pending = [];
    process.stderr.write(text);
  };
  process.once("exit", () => pending.length > 0 && flush());
  return (line) => {
    if (pending.push(`${line}\n`) === 1) setImmediate(flush);
  };
}

/** `Date#toISOString()` of now, formatted once per millisecond however many lines share it. */
function isoClock(): () => string {
  let at = 0;
  let text = "";
  return () => {
    const now = Date.now();
    if (now !== at) text = new Date((at = now)).toISOString();
    return text;
  };
}

/** `tag` (a worker's `worker 2 pid 1234`) goes in brackets after the level, so each line says which process wrote it. */
export function createLogger(write: (line: string) => void = batchedStderr(), tag?: string): Logger {
  const [info, warn, error] = ["info", "warn", "error"].map((level) => (tag === undefined ? level : `${level} [${tag}]`)) as [string, string, string];
  const stamp = isoClock();
  // one event, one line: a line break or control character from outside (an upstream's error text) cannot forge another
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  const emit = (level: string, message: string) => write(redact(`${stamp()} ${level} ${message.replace(/[\x00-\x1f\x7f]/g, " ")}`));
  return {
    info: (m) => emit(info, m),
    warn: (m) => emit(warn, m),
    error: (m, d) => emit(error, d === undefined ? m : `${m}: ${describe(d)}`),
    access: (method, path, status, ms) => write(`${stamp()} ${info} ${method} ${path} ${status} ${Math.round(ms)}ms`),
  };
}

export const silentLogger: Logger = { info() {}, warn() {}, error() {} };

/** One line per request: method, path without the query (codes and state live there), status, time. */
export function accessLog(log: Logger) {
  return (req: IncomingMessage, res: ServerResponse, next: () => void): void => {
    const started = performance.now();
    res.once("finish", () => {
      const url = req.url ?? "";
      const query = url.indexOf("?");
      log.info(`${req.method} ${query < 0 ? url : url.slice(0, query)} ${res.statusCode} ${Math.round(performance.now() - started)}ms`);
    });
    next();
  };
}

/** Node's parser takes only these methods; anything else is named by a fixed word, never echoed. */
const KNOWN_METHODS = new Set(METHODS);
const STARTED = Symbol("access log: request start");
type Timed = ServerResponse & { [STARTED]?: number };

/**
 * The access line of a route whose path the gateway knows (an MCP endpoint): built from the method,
 * `path` (the route's own, never the client's spelling of it), the status and the time, so it needs
 * no redaction pass and no closure per request. Loggers without `access` get `info` lines instead.
 */
export function knownPathAccessLog(log: Logger, path: string): (res: ServerResponse) => void {
  const line = log.access
    ? log.access.bind(log)
    : (method: string, p: string, status: number, ms: number) => log.info(`${method} ${p} ${status} ${Math.round(ms)}ms`);
  function finished(this: Timed): void {
    const method = this.req.method ?? "";
    line(KNOWN_METHODS.has(method) ? method : "OTHER", path, this.statusCode, performance.now() - this[STARTED]!);
  }
  return (res: Timed) => {
    res[STARTED] = performance.now();
    res.on("finish", finished);
  };
}
