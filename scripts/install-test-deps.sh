#!/usr/bin/env bash
# `npm run test:e2e` and CI run this before the tests: installs the Debian packages the tests use when they are missing — the real
# receivers (Prometheus, Alertmanager, graphite-web with Django), Chromium (the playground's browser test), setpriv (the image test drops to a
# non-root user), openssl and tinyproxy (TLS destinations with a private CA, a forward proxy) and kubectl (deploy/ rendering, fake API server fidelity). Needs root for apt-get.
set -euo pipefail
packages="prometheus prometheus-alertmanager graphite-web python3-django redis-server util-linux chromium fonts-dejavu-core openssl tinyproxy"
command -v kubectl >/dev/null 2>&1 || packages="$packages kubernetes-client"
missing=""
for p in $packages; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "The tests need these Debian packages:$missing — install them (apt-get install$missing) and run npm test again." >&2
  exit 1
fi
echo "== installing test dependencies:$missing"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
