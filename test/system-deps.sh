#!/bin/sh
# What `npm test` needs from the operating system (Debian packages): redis-server for the store,
# restart, scale-out and fault tests. Installed here when missing and possible (root with apt-get);
# otherwise the exact command is printed and the tests do not start. Tests never skip for lack of it.
set -eu
missing=""
command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "npm test: installing$missing" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >&2
else
  echo "npm test needs$missing: run \`sudo apt-get install -y$missing\` (Debian/Ubuntu) and try again" >&2
  exit 1
fi
