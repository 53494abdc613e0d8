import type { RequestHandler } from "express";

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string, detail?: unknown): void;
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
  [/\b(gh[opusr]_|github_pat_)\w+/g, "[redacted]"],
  [new RegExp(`\\b(${SECRET_FIELDS})=[^&\\s"]+`, "gi"), "$1=[redacted]"],
  [new RegExp(`"(${SECRET_FIELDS})"(\\s*:\\s*)"(?:[^"\\\\]|\\\\.)*"`, "gi"), '"$1"$2"[redacted]"'], // the same fields in JSON
];

export const redact = (line: string): string => SECRETS.reduce((s, [re, replacement]) => s.replace(re, replacement), line);

const describe = (detail: unknown): string => {
  if (detail instanceof Error) return `${detail.name}: ${detail.message}${detail.cause instanceof Error ? ` (cause: ${detail.cause.message})` : ""}`;
  return detail === undefined ? "" : typeof detail === "string" ? detail : JSON.stringify(detail);
};

export function createLogger(write: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Logger {
  const emit = (level: string, message: string) => write(redact(`${new Date().toISOString()} ${level} ${message}`));
  return {
    info: (m) => emit("info", m),
    warn: (m) => emit("warn", m),
    error: (m, d) => emit("error", d === undefined ? m : `${m}: ${describe(d)}`),
  };
}

export const silentLogger: Logger = { info() {}, warn() {}, error() {} };

/** One line per request: method, path without the query (codes and state live there), status, time. */
export function accessLog(log: Logger): RequestHandler {
  return (req, res, next) => {
    const started = performance.now();
    res.on("finish", () => log.info(`${req.method} ${req.path} ${res.statusCode} ${Math.round(performance.now() - started)}ms`));
    next();
  };
}
