// Preloaded (`node --import`) into the official conformance suite when its `server` scenarios run
// through the gateway. The suite has no option for credentials (`conformance server --help`), so this
// gives its process a bearer token the way a configured MCP client holds one: every request to
// CONFORMANCE_BEARER_ORIGIN carries `Authorization: Bearer CONFORMANCE_BEARER`; nothing else changes.
// Node's fetch (the MCP SDK transport) and undici's request (the suite's raw HTTP checks) both go
// through the undici global dispatcher, so composing it reaches every request the suite sends.
import { createRequire } from "node:module";
import process from "node:process";
import { URL } from "node:url";

const token = process.env.CONFORMANCE_BEARER;
const origin = process.env.CONFORMANCE_BEARER_ORIGIN;
if (!token || !origin) throw new Error("conformance-bearer: set CONFORMANCE_BEARER and CONFORMANCE_BEARER_ORIGIN");

// The suite's own undici, so the dispatcher is the one its `request` uses.
const suite = createRequire(import.meta.url).resolve("@modelcontextprotocol/conformance/package.json");
const { getGlobalDispatcher, setGlobalDispatcher } = createRequire(suite)("undici");

/** Header lists come as an object, a flat [name, value, …] array, or [name, value] pairs; a flat array goes on. */
function withAuthorization(headers) {
  const pairs = [];
  if (Array.isArray(headers)) {
    if (headers.length > 0 && Array.isArray(headers[0])) pairs.push(...headers);
    else for (let i = 0; i < headers.length; i += 2) pairs.push([headers[i], headers[i + 1]]);
  } else if (headers) pairs.push(...Object.entries(headers));
  const kept = pairs.filter(([name]) => String(name).toLowerCase() !== "authorization");
  return [...kept, ["authorization", `Bearer ${token}`]].flat();
}

setGlobalDispatcher(
  getGlobalDispatcher().compose((dispatch) => (options, handler) => {
    const target = new URL(options.path ?? "/", options.origin).origin;
    return dispatch(target === origin ? { ...options, headers: withAuthorization(options.headers) } : options, handler);
  }),
);
