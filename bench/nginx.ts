/**
 * Debian's nginx as the reference proxy: one worker process (one core, as the gateway is one Node
 * thread), no master, no access log, a keep-alive pool to the upstream and no buffering either way,
 * so it is a plain streaming reverse proxy to the same upstream.
 */
import type { ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { freePort, launch, sleep } from "./processes.js";

export interface Nginx {
  child: ChildProcess;
  mcpUrl: string;
}

/** One worker and no master (one core, as the gateway's one Node thread), or a master and `workers` workers. */
export function config(dir: string, port: number, upstream: URL, fdLimit: number, workers = 1): string {
  const temp = (name: string) => join(dir, "temp", name);
  return `daemon off;
master_process ${workers > 1 ? "on" : "off"};
worker_processes ${workers};
worker_rlimit_nofile ${fdLimit};
pid ${join(dir, "nginx.pid")};
error_log ${join(dir, "error.log")} warn;
events { worker_connections ${Math.floor(fdLimit / 2)}; }
http {
  access_log off;
  client_body_temp_path ${temp("client_body")};
  proxy_temp_path ${temp("proxy")};
  fastcgi_temp_path ${temp("fastcgi")};
  uwsgi_temp_path ${temp("uwsgi")};
  scgi_temp_path ${temp("scgi")};
  upstream mcp_upstream {
    server ${upstream.host};
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://mcp_upstream;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 1h;
    }
  }
}
`;
}

export async function startNginx(binary: string, dir: string, upstreamUrl: string, fdLimit: number, workers = 1): Promise<Nginx> {
  const port = await freePort();
  const upstream = new URL(upstreamUrl);
  mkdirSync(join(dir, "temp"), { recursive: true });
  const conf = join(dir, "nginx.conf");
  writeFileSync(conf, config(dir, port, upstream, fdLimit, workers));
  const child = launch(binary, ["-p", dir, "-e", join(dir, "error.log"), "-c", conf], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const deadline = Date.now() + 10_000;
  while (!(await accepts(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      const log = existsSync(join(dir, "error.log")) ? readFileSync(join(dir, "error.log"), "utf8") : "";
      throw new Error(`nginx did not start (exit ${child.exitCode}):\n${stderr}\n${log}`);
    }
    await sleep(20);
  }
  return { child, mcpUrl: `http://127.0.0.1:${port}${upstream.pathname}` };
}

const accepts = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
