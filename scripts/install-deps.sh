#!/usr/bin/env bash
# Installs everything CELAEST needs to build, test and run its demo on Debian 12.
# Idempotent and non-interactive; skips apt entirely when every package is already present.
set -euo pipefail

PACKAGES=(
  build-essential g++ make cmake pkg-config
  postgresql-15 postgresql-server-dev-15 postgresql-client-15 postgresql-common
  libcurl4-openssl-dev nlohmann-json3-dev libgtest-dev ca-certificates
  python3 python3-pytest python3-psycopg2 openssl
  clang-tidy  # scripts/tidy.sh: the boundary check (bugprone-exception-escape)
  util-linux  # taskset
  # test/integration/test_http2.py: an HTTPS provider over HTTP/2 (the benchmarks use it too)
  nginx-light libnginx-mod-http-echo
  # Sanitizers and fuzzing (test/fuzz): clang's -fsanitize=fuzzer needs the compiler-rt
  # runtimes (libFuzzer, ASan, UBSan), which Debian 12 ships apart from clang itself;
  # llvm gives llvm-symbolizer, so that sanitizer reports name functions and lines.
  clang libclang-rt-14-dev llvm
)

missing=()
for package in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
# (pgcrypto and uuid-ossp ship in postgresql-15 itself on Debian 12.)

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  # The tests start their own nginx on free ports: the package must not start the system's
  # (port 80 may be taken, failing the install). policy-rc.d "101" = do not start services.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod 755 /usr/sbin/policy-rc.d
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian starts a default cluster on install; our tests use their own throwaway clusters.
echo "install-deps: all dependencies present"
