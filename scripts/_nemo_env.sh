# shellcheck shell=bash
# Sourced by scripts/test_nemo: builds (once) the speech container's CPU test environment, a
# Python 3.11 venv with torch 2.13.0 (CPU) and the real NeMo toolkit, and sets NEMO_PYTHON.
# The venv lives in a cache outside the checkout (~/.cache/spark-control, or $SPARK_CACHE),
# keyed by the hash of parakeet_container/requirements.txt and requirements_nemo_test.txt: a
# changed pin builds a new one (under a lock, replacing the old), an unchanged one costs a stat.
# Anything that fails here fails the test run with the reason and pip's log; nothing is skipped.
set -euo pipefail

NEMO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NEMO_REQUIREMENTS="$NEMO_ROOT/parakeet_container/requirements_nemo_test.txt"
NEMO_PINS="$NEMO_ROOT/parakeet_container/requirements.txt"  # the container's, included by -r

find_python311() {
  local candidate found
  for candidate in "${SPARK_NEMO_PYTHON:-}" python3.11 python3 \
      "$HOME/.pyenv/versions/3.11.7/bin/python3"; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 \
        && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  if command -v pyenv >/dev/null 2>&1; then
    found=$(ls -d "$(pyenv root)"/versions/3.11.*/bin/python3 2>/dev/null | sort -V | tail -n 1)
    [ -n "$found" ] && { echo "$found"; return 0; }
  fi
  echo "NeMo test env: Python 3.11 not found (pyenv install 3.11, or set SPARK_NEMO_PYTHON)" >&2
  return 1
}

ensure_nemo_env() {
  local python hash cache venv torch_pin started log lock_fd
  hash=$(cat "$NEMO_PINS" "$NEMO_REQUIREMENTS" | sha256sum | cut -c1-12)
  cache="${SPARK_CACHE:-${XDG_CACHE_HOME:-${HOME:-$NEMO_ROOT}/.cache}/spark-control}"
  venv="$cache/nemo-venv-$hash"
  NEMO_PYTHON="$venv/bin/python"
  [ -f "$venv/.complete" ] && return 0
  mkdir -p "$cache"
  # One build at a time: test runs of several checkouts share this cache.
  exec {lock_fd}>"$cache/nemo-venv.lock"
  flock "$lock_fd"
  if [ -f "$venv/.complete" ]; then  # built by the run we waited for
    exec {lock_fd}>&-
    return 0
  fi
  python=$(find_python311)
  started=$SECONDS
  echo "NeMo test env: building $venv with $python (first run only, about 2 minutes)" >&2
  rm -rf "$cache"/nemo-venv-*  # an older env (other pins) or a half-built one: 2 GB each
  "$python" -m venv "$venv"
  log="$venv/pip.log"
  torch_pin=$(grep -E '^torch==' "$NEMO_PINS")
  # torch first, alone: pip takes the CPU wheel lying on this machine's disk; the same pin as
  # a constraint keeps NeMo's `torch>=2.6` from asking for a (multi-GB CUDA) newer release.
  echo "NeMo test env: [1/2] $torch_pin (CPU)" >&2
  if ! "$NEMO_PYTHON" -m pip install --progress-bar off --disable-pip-version-check \
      "$torch_pin" >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    echo "NeMo test env: installing $torch_pin failed (log: $log)" >&2
    return 1
  fi
  echo "NeMo test env: [2/2] $(grep -E '^nemo' "$NEMO_PINS") and the test tools" >&2
  "$NEMO_PYTHON" -m pip install --progress-bar off --disable-pip-version-check \
      -r "$NEMO_REQUIREMENTS" -c <(echo "$torch_pin") >>"$log" 2>&1 &
  local pip_pid=$! shown=0 count
  while kill -0 "$pip_pid" 2>/dev/null; do  # progress: packages resolved so far
    sleep 10
    count=$(grep -c '^Collecting' "$log" || true)
    [ "$count" != "$shown" ] && { echo "  ... $count packages resolved" >&2; shown=$count; }
  done
  if ! wait "$pip_pid"; then
    grep -v "is ignored: it is neither" "$log" | tail -n 20 >&2
    echo "NeMo test env: pip install failed (log: $log)" >&2
    return 1
  fi
  if ! "$NEMO_PYTHON" -c 'import nemo.collections.asr' >>"$log" 2>&1; then
    tail -n 20 "$log" >&2
    echo "NeMo test env: nemo.collections.asr does not import (log: $log)" >&2
    return 1
  fi
  touch "$venv/.complete"
  exec {lock_fd}>&-
  echo "NeMo test env: ready in $((SECONDS - started)) s, $(du -sh "$venv" | cut -f1)" >&2
}

ensure_nemo_env
export NEMO_PYTHON
