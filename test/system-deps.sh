#!/bin/sh
# What `npm test` needs from the operating system (Debian packages): redis-server for the store,
# restart, scale-out and fault tests; chromium for the real-browser test (test/e2e/browser.test.ts,
# or point CHROMIUM_PATH at another Chromium); iproute2's `ip` to bring up loopback in the network namespace
# of the conformance suite's client scenarios (test/conformance/client.test.ts, `unshare -n`); systemd's
# `systemd-analyze` to verify the documented unit (test/cli/pack.test.ts). Installed here when missing and possible (root with
# apt-get); otherwise the exact command is printed and the tests do not start. Tests never skip for lack of them.
set -eu
missing=""
command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
command -v ip >/dev/null 2>&1 || missing="$missing iproute2"
command -v systemd-analyze >/dev/null 2>&1 || missing="$missing systemd"
if [ -n "${CHROMIUM_PATH:-}" ]; then
  [ -x "$CHROMIUM_PATH" ] || { echo "npm test: CHROMIUM_PATH=$CHROMIUM_PATH is not an executable file" >&2; exit 1; }
else
  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || missing="$missing chromium"
fi
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "npm test: installing$missing" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >&2
else
  echo "npm test needs$missing: run \`sudo apt-get install -y$missing\` (Debian/Ubuntu) and try again" >&2
  exit 1
fi
