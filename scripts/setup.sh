#!/usr/bin/env bash
# Prepares this machine for htapchaos: installs what is missing (Docker engine,
# mmdebstrap; for the tests chromium and xmllint), starts the engine when none
# answers, and builds the node image when it is absent. Safe to run again: each step
# is skipped when already done.
#
# --vitess also builds the vitess topology's image: Vitess compiled from the Go
# module proxy (cached per version under ~/.cache/htapchaos, so only a fresh
# machine pays the 5-11 minutes) and etcd from Debian. The tests need it; the
# other topologies do not.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
  export PATH=$PATH:/usr/local/go/bin
fi
command -v go >/dev/null 2>&1 || { echo "setup: Go is not installed (need Go 1.26)" >&2; exit 1; }

SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo

need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v docker >/dev/null 2>&1 || need+=(docker.io)
command -v mmdebstrap >/dev/null 2>&1 || need+=(mmdebstrap)
# Tests: the report renders in headless Chromium; JUnit files are checked with xmllint.
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v xmllint >/dev/null 2>&1 || need+=(libxml2-utils)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 $SUDO apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${need[@]}" | sort -u) >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  log=${TMPDIR:-/tmp}/htapchaos-dockerd.log
  echo "setup: no container engine answers; starting dockerd (log: $log)"
  $SUDO sh -c "nohup dockerd >'$log' 2>&1 &"
  for _ in $(seq 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  if ! docker info >/dev/null 2>&1; then
    echo "setup: dockerd did not answer within 60 s; its log ends with:" >&2
    tail -20 "$log" >&2
    exit 1
  fi
fi
echo "setup: engine $(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})')"

go run ./cmd/htapchaos image build --if-missing
if [ "${1:-}" = --vitess ]; then
  go run ./cmd/htapchaos image build --vitess --if-missing
fi
