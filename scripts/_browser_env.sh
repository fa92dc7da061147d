# shellcheck shell=bash
# Sourced by scripts/test: what the browser test (tests/browser/) needs, installed idempotently.
# Debian's chromium (Playwright cannot download its own browsers here) and node with npm, then
# the pinned playwright-core from tests/browser/package-lock.json. Exports CHROMIUM and NODE.
# Works on the host and inside a chroot alike: everything is found on PATH.
set -euo pipefail

_browser_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

ensure_browser_packages() {
  local missing=() pkg
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v node >/dev/null 2>&1 || missing+=(nodejs)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Debian packages for the browser test: ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" \
      >/dev/null 2>&1 || {
      apt-get update >/dev/null 2>&1
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null
    }
  else
    echo "The browser test needs: ${missing[*]} (apt-get install them as root)" >&2
    return 1
  fi
}

ensure_playwright() {
  local dir="$_browser_root/tests/browser"
  local stamp="$dir/node_modules/.lock-hash"
  local want
  want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    # playwright-core downloads no browser on install; npm ci installs exactly the lock file.
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    echo "$want" > "$stamp"
  fi
}

ensure_browser_packages
ensure_playwright
CHROMIUM="$(command -v chromium)"
NODE="$(command -v node)"
export CHROMIUM NODE
