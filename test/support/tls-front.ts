import { Agent, createServer as createHttpServer, request, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import type { TestCertificate } from "./https.js";

/**
 * A reverse proxy in front of a gateway, as operators deploy one: TLS ends here when it has a
 * certificate, and every request is piped on, streaming both ways, to a plain-http target on
 * loopback. Each request is written to a journal shared by all fronts of a test, so the test can
 * tell which party asked what, and in which order.
 */
export interface Front {
  /** https://127.0.0.1:<port> with a certificate, else http://127.0.0.1:<port> */
  origin: string;
  port: number;
  /** Where requests go from now on, e.g. a gateway's listenUrl. Until then the front answers 502. */
  forwardTo(target: string): void;
  close(): Promise<void>;
}

export interface FrontOptions {
  /** Written before each request as `<label> <METHOD> <path>` (no query). */
  label: string;
  journal: string[];
  certificate?: TestCertificate;
  target?: string;
}

/** RFC 9110 §7.6.1: connection-specific fields end at each hop. */
const HOP_BY_HOP = ["connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"];

const endToEnd = (headers: IncomingHttpHeaders): IncomingHttpHeaders =>
  Object.fromEntries(Object.entries(headers).filter(([name]) => !HOP_BY_HOP.includes(name)));

export async function startFront(opts: FrontOptions): Promise<Front> {
  let target = opts.target;
  const agent = new Agent({ keepAlive: true });
  const forward = (req: IncomingMessage, res: ServerResponse) => {
    opts.journal.push(`${opts.label} ${req.method} ${(req.url ?? "/").split("?", 1)[0]}`);
    if (!target) return void res.writeHead(502).end();
    const onward = request(new URL(req.url ?? "/", target), { method: req.method, headers: forwarded(req), agent }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, endToEnd(answer.headers));
      answer.pipe(res);
    });
    onward.once("error", () => (res.headersSent ? res.destroy() : res.writeHead(502).end()));
    res.once("close", () => {
      if (!res.writableFinished) onward.destroy();
    });
    req.pipe(onward);
  };
  const forwarded = (req: IncomingMessage): IncomingHttpHeaders => ({
    ...endToEnd(req.headers),
    "x-forwarded-proto": opts.certificate ? "https" : "http",
    "x-forwarded-for": req.socket.remoteAddress,
  });
  const server = opts.certificate ? createHttpsServer({ key: opts.certificate.key, cert: opts.certificate.cert }, forward) : createHttpServer(forward);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `${opts.certificate ? "https" : "http"}://127.0.0.1:${port}`,
    port,
    forwardTo: (next) => void (target = next),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}
