# shellcheck shell=bash
# Sourced by scripts/test and scripts/demo: the environment for the NEWEST Home Assistant, which
# needs Python >= 3.14.2 (every HA release from 2026.3 on).
#
# A real python3.14 (>= 3.14.2) on PATH or under pyenv is used directly. Otherwise a Debian sid
# root file system (Debian ships Python 3.14 there) is built once with debootstrap under
# $SPARK_CACHE (default ~/.cache/spark-control, outside every checkout and shared by all of them)
# and commands run in it by chroot, inside a private mount namespace (unshare), so /proc, /dev and
# the bind-mounted checkout disappear with the command whatever way it ends.
#
# Defines: newest_run CMD... (runs CMD with the newest venv's bin first on PATH, in the checkout)
#          NEWEST_VENV (its path as seen by newest_run)
set -euo pipefail

ROOT="${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
SPARK_CACHE="${SPARK_CACHE:-$HOME/.cache/spark-control}"
SID_ROOT="$SPARK_CACHE/sid-root"
SID_MIRROR="${SID_MIRROR:-}"
# debootstrap lays the base with Python (its --include does not resolve every dependency of
# larger packages); apt inside the root then installs the rest: a compiler for the wheels PyPI
# lacks for 3.14 (pymicro-vad, pyspeex-noise, pocketsphinx), the simulator's speech tools, and
# node + chromium for the dashboard's browser test, and libturbojpeg for the camera component
# that HA 2026.11's frontend loads (the demo's log otherwise holds an ERROR).
SID_BASE=(python3.14 python3.14-venv ca-certificates)
SID_PACKAGES=(python3.14-dev gcc g++ make flite ffmpeg nodejs npm chromium libturbojpeg0)
# Which venv: the test suite's (default) or the demo's (scripts/demo sets both).
NEWEST_REQUIREMENTS="${NEWEST_REQUIREMENTS:-$ROOT/requirements_test_newest.txt}"
NEWEST_VENV_NAME="${NEWEST_VENV_NAME:-newest}"
# apt in sid: its Release file may be past Valid-Until in a stale mirror snapshot.
SID_APT=(apt-get -o Acquire::Check-Valid-Until=false -o Dpkg::Use-Pty=0 -y --no-install-recommends)

_say() { echo "[newest] $*" >&2; }

_host_python314() {
  local candidate
  for candidate in "${SPARK_PYTHON314:-}" python3.14 \
      $(ls -d "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/3.14.*/bin/python3 2>/dev/null | sort -V -r); do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 \
        && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 14, 2))' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

_debian_mirror() {
  # The mirror the host's apt uses (Debian's own by default).
  if [ -n "$SID_MIRROR" ]; then echo "$SID_MIRROR"; return; fi
  local uri
  uri=$(grep -hE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
      /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | grep -oE 'https?://[^ ]*/debian/?( |$)' | grep -v security | head -n 1 | tr -d ' ' || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

# Runs CMD inside the root with /proc, /dev, /dev/pts, /sys and the checkout mounted, as root.
_sid_chroot() {
  unshare --mount --propagation private -- bash -euo pipefail -c '
    root=$1; project=$2; shift 2
    mount --rbind /dev "$root/dev"
    mount -t proc proc "$root/proc"
    mount --rbind /sys "$root/sys"
    mount -t tmpfs tmpfs "$root/tmp"   # scratch files vanish with the command
    mkdir -p "$root$project"
    mount --bind "$project" "$root$project"
    exec chroot "$root" /usr/bin/env -i HOME=/root TERM="${TERM:-dumb}" LANG=C.UTF-8 \
      PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      SSL_CERT_FILE=/etc/ssl/certs/host-ca.crt PIP_CERT=/etc/ssl/certs/host-ca.crt \
      PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_DEFAULT_TIMEOUT=180 CI="${CI:-}" "$@"
  ' _ "$SID_ROOT" "$ROOT" "$@"
}

_sid_fixups() {
  # Host CA bundle (a proxying mirror may re-sign) and name resolution, on every run: cheap.
  cp -f /etc/ssl/certs/ca-certificates.crt "$SID_ROOT/etc/ssl/certs/host-ca.crt"
  cp -f /etc/resolv.conf "$SID_ROOT/etc/resolv.conf" 2>/dev/null || true
  # sid lists `localhost` for ::1 first; pytest-socket allows only 127.0.0.1, so localhost is IPv4.
  printf '127.0.0.1\tlocalhost\n::1\tip6-localhost ip6-loopback\n' > "$SID_ROOT/etc/hosts"
}

_build_sid_root() {
  local partial="$SID_ROOT.partial" mirror
  mirror=$(_debian_mirror)
  command -v debootstrap >/dev/null 2>&1 || {
    _say "installing debootstrap on the host"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends debootstrap >/dev/null \
      || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive \
           apt-get install -y --no-install-recommends debootstrap >/dev/null; }
  }
  rm -rf "$partial"
  _say "building the Debian sid root from $mirror into $SID_ROOT (once; a few minutes)"
  # Debootstrap prints a line per package: progress is visible.
  debootstrap --variant=minbase --include="$(IFS=,; echo "${SID_BASE[*]}")" \
    sid "$partial" "$mirror" 2>&1 \
    | awk '/^I: (Retriev|Unpack|Configur|Base)/ && n++ % 20 == 0 { print "[newest]   " $0; fflush() }' >&2
  [ -x "$partial/usr/bin/python3.14" ] || { _say "debootstrap failed (see $partial/debootstrap/debootstrap.log)"; return 1; }
  mv "$partial" "$SID_ROOT"
}

_ensure_sid_root() {
  mkdir -p "$SPARK_CACHE"
  (
    # One builder at a time across every checkout sharing the cache.
    flock 9
    [ -x "$SID_ROOT/usr/bin/python3.14" ] || _build_sid_root
    _sid_fixups
    if [ "$(cat "$SID_ROOT/.spark-packages" 2>/dev/null)" != "$(printf '%s\n' "${SID_PACKAGES[@]}")" ]; then
      _say "installing Debian packages in the sid root: ${SID_PACKAGES[*]}"
      _sid_chroot "${SID_APT[@]}" update -q >/dev/null \
        && _sid_chroot /usr/bin/env DEBIAN_FRONTEND=noninteractive \
          "${SID_APT[@]}" install -q "${SID_PACKAGES[@]}" 2>&1 \
          | awk '/^E:/ || (/^Setting up/ && n++ % 25 == 0) { print "[newest]   " $0; fflush() }' >&2
      _sid_chroot "${SID_APT[@]}" clean
      printf '%s\n' "${SID_PACKAGES[@]}" > "$SID_ROOT/.spark-packages"
    fi
  ) 9> "$SPARK_CACHE/.sid-root.lock"
}

_ensure_newest_venv() {
  # $1: how to run a command in the newest environment; the venv is keyed by the requirements.
  local hash name venv_rel stamp nodeps_stamp
  hash=$(sha256sum < "$NEWEST_REQUIREMENTS" | cut -c1-12)
  name="${NEWEST_VENV_NAME:-newest}-venv-$hash"
  if [ -n "${NEWEST_HOST_PYTHON:-}" ]; then
    NEWEST_VENV="$SPARK_CACHE/$name"
  else
    NEWEST_VENV="/opt/$name"   # inside the root
  fi
  venv_rel="$NEWEST_VENV"
  stamp="$venv_rel/.requirements-ok"
  (
    flock 9
    if ! newest_raw test -f "$stamp"; then
      _say "creating the newest-HA venv $NEWEST_VENV (first run: several minutes, some wheels build from source)"
      newest_raw rm -rf "$venv_rel"
      newest_raw "${NEWEST_PYTHON}" -m venv "$venv_rel"
      newest_raw "$venv_rel/bin/python" -m pip install --quiet --upgrade pip
      newest_raw "$venv_rel/bin/python" -m pip install --progress-bar off \
        -r "$NEWEST_REQUIREMENTS" 2>&1 \
        | awk '/^(Collecting|Building wheel|Successfully|ERROR)/ { print "[newest]   " $0; fflush() }' >&2
      newest_raw "$venv_rel/bin/python" -c 'import homeassistant.const as c; print("[newest] Home Assistant", c.__version__)' >&2
      newest_raw touch "$stamp"
    fi
    # Packages used for a data file only, without their dependencies; their own stamp, so a
    # change here adds them to the existing venv instead of rebuilding it.
    nodeps_stamp="$venv_rel/.nodeps-$(sha256sum < "$ROOT/requirements_test_nodeps.txt" | cut -c1-12)"
    if ! newest_raw test -f "$nodeps_stamp"; then
      newest_raw "$venv_rel/bin/python" -m pip install --quiet --no-deps \
        -r "$ROOT/requirements_test_nodeps.txt"
      newest_raw touch "$nodeps_stamp"
    fi
  ) 9> "$SPARK_CACHE/.newest-venv.lock"
}

# Runs a command in the newest environment without the venv on PATH.
newest_raw() {
  if [ -n "${NEWEST_HOST_PYTHON:-}" ]; then
    "$@"
  else
    _sid_chroot "$@"
  fi
}

# Runs a command in the checkout with the newest venv first on PATH.
newest_run() {
  newest_raw /usr/bin/env PATH="$NEWEST_VENV/bin:/usr/local/bin:/usr/bin:/bin" \
    bash -c 'cd "$1" && shift && exec "$@"' _ "$ROOT" "$@"
}

if NEWEST_HOST_PYTHON=$(_host_python314); then
  NEWEST_PYTHON="$NEWEST_HOST_PYTHON"
  _say "using $NEWEST_PYTHON ($("$NEWEST_PYTHON" -V))"
else
  NEWEST_HOST_PYTHON=""
  NEWEST_PYTHON=/usr/bin/python3.14
  [ "$(id -u)" = 0 ] || { _say "building the Python 3.14 root needs root (or put python3.14 >= 3.14.2 on PATH)"; exit 1; }
  _ensure_sid_root
fi
mkdir -p "$SPARK_CACHE"
_ensure_newest_venv
