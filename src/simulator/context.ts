import type { Clock } from "../clock.js";
import type { SimApp, SimFaults, SimQuirks, SimUser } from "./options.js";
import type { GrantStore } from "./store.js";
import type { ConsentMode } from "./web/authorize.js";

/** Everything the three origins share; `faults` is the live object the Simulator exposes. */
export interface SimContext {
  clock: Clock;
  origins: { web: string; api: string; mcp: string };
  apps: SimApp[];
  users: SimUser[];
  browserUser: SimUser;
  consent: ConsentMode;
  quirks: SimQuirks;
  faults: Partial<SimFaults>;
  store: GrantStore;
}
