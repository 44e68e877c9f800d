#!/usr/bin/env bash
# Installs the system packages mcpg builds and tests with (Debian 12). Needs root or sudo.
set -euo pipefail
if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
    libssl-dev libyaml-dev libsodium-dev libffi-dev pkg-config minisign python3-venv curl binutils make
