#!/usr/bin/env bash
# Set up the BecomingONE development environment (idempotent).
#
#   bash tools/setup.sh
#
# Creates .venv at the repo root and installs the project in editable mode with
# the dev extra. Re-runs skip the pip install while .venv/.setup-stamp is newer
# than pyproject.toml. Runs as root on a fresh Debian 12 as well as on machines
# that already have a Python >= 3.11.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
STAMP="$VENV/.setup-stamp"
APT_UPDATED=0

log() { echo "setup: $*"; }
die() { echo "setup: error: $*" >&2; exit 1; }

# Run a command quietly; show its output only if it fails.
quiet() {
    local out
    if ! out="$("$@" 2>&1)"; then
        echo "$out" >&2
        die "command failed: $*"
    fi
}

apt_install() {
    [ "$#" -gt 0 ] || return 0
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install manually: $*"
    if [ "$APT_UPDATED" -eq 0 ]; then
        quiet env DEBIAN_FRONTEND=noninteractive apt-get update -q
        APT_UPDATED=1
    fi
    quiet env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

# --- system packages (Debian) --------------------------------------------------
# Packages the runtime or the tests need from apt. Only missing ones are installed.
apt_packages() {
    local pkgs=(mosquitto socat chromium)
    local missing=()
    local p
    for p in "${pkgs[@]}"; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        log "apt install ${missing[*]}"
        apt_install "${missing[@]}"
    fi
}

# --- npm packages ----------------------------------------------------------------
# Node packages the tests need (the virtual board's MicroPython), pinned in
# tools/package.json and package-lock.json, installed under tools/node_modules.
npm_packages() {
    local stamp="$ROOT/tools/node_modules/.package-lock.json"
    if [ -f "$stamp" ] && [ "$stamp" -nt "$ROOT/tools/package.json" ] &&
        [ -d "$ROOT/tools/node_modules/@micropython/micropython-webassembly-pyscript" ]; then
        return 0
    fi
    command -v npm >/dev/null 2>&1 || apt_install nodejs npm
    log "npm install (tools/package.json)"
    quiet npm install --prefix "$ROOT/tools" --no-audit --no-fund
}

# --- python ------------------------------------------------------------------------
find_python() {
    local c
    for c in python3.11 python3; do
        if command -v "$c" >/dev/null 2>&1 &&
            "$c" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then
            command -v "$c"
            return 0
        fi
    done
    return 1
}

make_venv() {
    local py="$1"
    if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
        return 0
    fi
    log "creating .venv with $("$py" --version 2>&1)"
    rm -rf "$VENV"
    if ! "$py" -m venv "$VENV" >/dev/null 2>&1; then
        # Debian ships venv/ensurepip separately.
        rm -rf "$VENV"
        log "python venv module missing; installing python3-venv"
        apt_install python3-venv python3-pip
        quiet "$py" -m venv "$VENV"
    fi
}

python_packages() {
    if [ -f "$STAMP" ] && [ "$STAMP" -nt "$ROOT/pyproject.toml" ]; then
        log "python packages up to date"
        return 0
    fi
    log "installing python packages (pip install -e .[dev])"
    quiet "$VENV/bin/python" -m pip install -q --upgrade pip
    quiet "$VENV/bin/python" -m pip install -q -e "$ROOT[dev]"
    touch "$STAMP"
}

main() {
    cd "$ROOT"
    apt_packages
    npm_packages
    local py
    py="$(find_python)" || {
        log "no python >= 3.11 found; installing python3"
        apt_install python3 python3-venv python3-pip
        py="$(find_python)" || die "need python >= 3.11"
    }
    make_venv "$py"
    python_packages
    log "ok"
}

main "$@"
