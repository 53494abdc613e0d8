// Preloaded (`node --import`) into a server a test runs that listens on every interface when given only
// a port, as @modelcontextprotocol/server-everything does (`app.listen(PORT)`): tests bind loopback only.
import net from "node:net";

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const portOnly = (typeof args[0] === "number" || /^\d+$/.test(String(args[0]))) && typeof args[1] !== "string";
  if (portOnly) args.splice(1, 0, "127.0.0.1");
  return listen.apply(this, args);
};
