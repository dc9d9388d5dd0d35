#!/usr/bin/env bash
# One entry point for developers and CI: sets up .venv (idempotent) and runs the app or the tests.
#   bash scripts/dev.sh app     # install what is needed, start the app
#   bash scripts/dev.sh test    # install what is needed, run the whole test suite
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=.venv
STAMP=$VENV/.zitdesk-installed
LOCK=requirements/lock.txt
TORCH_LOCK=requirements/torch-cpu.txt

# Qt needs a few X/xcb libraries even for its offscreen platform; Xvfb is for screenshots.
APT_PKGS="libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libdbus-1-3 libxcb-cursor0 \
libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-xinerama0 libxcb-shape0 \
libxcb-randr0 libxcb-xkb1 libxcb-xfixes0 libglib2.0-0"
# The Windows installer test (tests/packaging/test_windows_installer.py) builds it with makensis,
# a stand-in payload with mingw-w64 and runs it under Wine (64-bit only, no recommends: about
# 1 GB installed, mostly libwine; 35 s here).
APT_PKGS_WININST="nsis wine wine64 gcc-mingw-w64-x86-64-win32"
install_system_libs() {
  command -v dpkg >/dev/null 2>&1 || return 0
  local missing="" missing_wi=""
  for p in $APT_PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  for p in $APT_PKGS_WININST; do dpkg -s "$p" >/dev/null 2>&1 || missing_wi="$missing_wi $p"; done
  [ -z "$missing$missing_wi" ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo="sudo"
  $sudo apt-get update -qq >/dev/null 2>&1 || true
  if [ -n "$missing" ]; then
    echo "installing system libraries for Qt:$missing" >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null 2>&1 \
      || echo "warning: could not install$missing (Qt may fail to start)" >&2
  fi
  if [ -n "$missing_wi" ]; then
    echo "installing the Windows installer test tools:$missing_wi" >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing_wi \
      >/dev/null 2>&1 || echo "warning: could not install$missing_wi (the Windows installer test will be skipped)" >&2
  fi
}

setup() {
  install_system_libs
  if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
  fi
  # Exactly the locked set (requirements/, regenerated on purpose by scripts/lock), hashes checked;
  # reinstalled whenever the lock or pyproject.toml changes. CPU torch from torch-cpu.txt.
  local want
  want=$(cat pyproject.toml "$LOCK" "$TORCH_LOCK" | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
    "$VENV/bin/python" -m pip install -q --require-hashes -r "$TORCH_LOCK" -r "$LOCK"
    "$VENV/bin/python" -m pip install -q --no-deps --no-build-isolation -e .
    echo "$want" > "$STAMP"
  fi
}

cmd=${1:-test}
shift || true
setup
case "$cmd" in
  app)  exec "$VENV/bin/python" main.py "$@" ;;
  test)
    # lint, layer contracts and the type checker first (seconds), then the whole suite
    [ "$#" -eq 0 ] && VENV="$VENV" bash scripts/lint
    QT_QPA_PLATFORM=offscreen exec "$VENV/bin/python" -m pytest -q -p no:cacheprovider "$@" ;;
  *) echo "usage: bash scripts/dev.sh app|test [args]" >&2; exit 2 ;;
esac
