#!/usr/bin/env bash
# Install what the autograder's sandbox needs: Debian's bubblewrap (bwrap), so that submissions are
# graded with a read-only view of the files and no network (autograder/isolation.py). Runs as root,
# or through sudo where that is available. Where neither works (a laptop without sudo, macOS), it
# says so and succeeds: the grader then runs with process-level limits only, and warns.
set -euo pipefail
if command -v bwrap >/dev/null 2>&1; then
  exit 0
fi
if [ "$(uname -s)" != "Linux" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "bubblewrap is not installed and this is not a Debian-like system: install it with your package manager" \
       "for the sandboxed grader (submissions are graded with process-level limits only meanwhile)."
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo="sudo"
  else
    echo "bubblewrap is not installed and installing it needs root: sudo apt-get install bubblewrap" \
         "(submissions are graded with process-level limits only meanwhile)."
    exit 0
  fi
fi
echo "Installing bubblewrap for the autograder's sandbox (apt-get install bubblewrap)"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq bubblewrap >/dev/null
bwrap --version
