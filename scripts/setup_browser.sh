#!/usr/bin/env bash
# Install what the browser tests need: Debian's Chromium (Playwright drives it; its own browser
# download is not used). Runs as root, or through sudo where that is available.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "Installing Chromium for the browser tests (apt-get install chromium)"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
chromium --version
