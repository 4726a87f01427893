#!/usr/bin/env bash
# Chromium for the browser tests (tests/test_web.py), from Debian's package; idempotent.
# `make test` runs it best-effort: where it cannot install, the browser tests skip and say why.
# `.ci/run` runs it with --required: CI fails instead of skipping them.
set -u
required=0
[ "${1:-}" = "--required" ] && required=1
if [ -x /usr/bin/chromium ] || command -v chromium >/dev/null 2>&1; then
  exit 0
fi
give_up() {
  if [ "$required" = 1 ]; then echo "Chromium not installed ($1): required here (--required)" >&2; exit 1; fi
  echo "Chromium not installed ($1): the browser tests will be skipped" >&2; exit 0
}
command -v apt-get >/dev/null 2>&1 || give_up "no apt-get on this machine; install Chromium yourself"
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else give_up "apt-get needs root"; fi
fi
echo "installing Chromium (Debian package chromium) for the browser tests" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 \
  || { $SUDO apt-get update -q >/dev/null 2>&1 && $SUDO apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1; } \
  || give_up "apt-get install chromium failed"
echo "installed: $(chromium --version 2>/dev/null | head -1)" >&2
