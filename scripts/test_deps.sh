#!/usr/bin/env bash
# System tools the tests use as independent readers: assimp (Debian's assimp-utils) reads our FBX
# and BVH. Idempotent; installs with apt-get when missing (as root, or through sudo).
set -euo pipefail
command -v assimp >/dev/null && exit 0
echo "test deps: installing assimp-utils (independent FBX/BVH reader)" >&2
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq assimp-utils >/dev/null; }; then
    echo "error: could not install assimp-utils; install it (apt-get install assimp-utils) and rerun" >&2
    exit 1
fi
