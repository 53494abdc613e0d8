/**
 * V8's allocation-site pretenuring, off for the gateway's process (main.ts imports this module first,
 * before anything else allocates). Node run with `--allocation-site-pretenuring` keeps V8's default.
 *
 * V8 watches each object literal's allocation site and, once nearly all its objects outlive a scavenge,
 * allocates that site's later objects straight in the old generation. On the proxy's hot path that
 * decision feeds itself: an exchange's objects allocated old point at the young request, response and
 * undici state of that exchange, which a scavenge must then keep and promote (old objects are roots to
 * it until the next full collection), so their sites are found surviving too and are pretenured in turn.
 * Every request's ~6 KB then survives each scavenge: 2–3 MB promoted per scavenge, 10–15 ms scavenges,
 * a third or more of the CPU a request costs. It starts early in most processes and never stops.
 * Without it, a request's objects die young and a scavenge takes about 1 ms (docs/performance.md).
 * The gateway keeps no large long-lived structure that pretenuring would speed up.
 */
import { setFlagsFromString } from "node:v8";

/** V8 takes dashes or underscores in a flag's name, and `=true`. */
const KEPT = /^--allocation[-_]site[-_]pretenuring(=true)?$/;

if (!process.execArgv.some((flag) => KEPT.test(flag))) setFlagsFromString("--no-allocation-site-pretenuring");
