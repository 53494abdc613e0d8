/* global process, Buffer, URL */
// The floor for a proxy on Node: node:http in, undici stream() out, no auth, no header policy, no logs.
// `npm run bench` measures it beside the gateway to show how much of the gap to nginx is Node's own.
import { createServer } from "node:http";
import { Agent } from "undici";

const target = new URL(process.argv[2]);
const agent = new Agent({ keepAliveTimeout: 30_000 });
const server = createServer((req, res) => {
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", () => {
    const { host: _host, connection: _connection, ...headers } = req.headers;
    agent
      .stream({ origin: target.origin, path: target.pathname, method: req.method, headers, body: Buffer.concat(chunks) }, ({ statusCode, headers: h }) => {
        res.writeHead(statusCode, { "content-type": h["content-type"], "content-length": h["content-length"] });
        return res;
      })
      .catch(() => res.destroy());
  });
});
server.listen(0, "127.0.0.1", () => process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`));
