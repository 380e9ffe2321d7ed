#!/usr/bin/env bash
# Run a command inside the Debian 13 (trixie) root that scripts/bootstrap-trixie.sh makes: CPython
# 3.13 with the venv of requirements/py313.txt (bpy 5.2 LTS, numpy 2) first on PATH, and Debian's
# blender 4.3 (whose embedded Python is 3.13 as well).
#
#   scripts/in-trixie.sh python -m pytest -q tests/test_addon*.py
#   scripts/in-trixie.sh blender -b --python-expr "import sys; print(sys.version)"
#
# The repository is bind-mounted at its own absolute path and the command starts there, so paths are
# the same inside and out. HOME is the root's /root (writable, kept between runs: caches stay warm).
# The environment is a clean one: PATH, HOME, LANG, plus TERM, CI, HP3D_*, PYTEST_ADDOPTS, proxy and
# CA-bundle variables from the caller (nothing of the host's Python: no PYTHONPATH, no VIRTUAL_ENV).
#
# /tmp is a fresh tmpfs for each run (pytest's tmp_path folders go there, about 0.5 GB for the add-on
# tests, and go away with the run; pass --basetemp=output/... to keep them).
#
# The mounts (/proc, a read-only /sys, private /tmp, /dev/shm and /dev/pts, the repository) live in a
# mount namespace of this command's own (unshare --mount, private propagation): nothing outside ever
# sees them, and the kernel removes them when the command ends, however it ends (error, Ctrl-C,
# kill -9). Runs one after another or side by side never meet each other's mounts, and none is left
# behind.
set -euo pipefail

ROOT=${HP3D_TRIXIE:-/var/cache/humanpose3d/trixie}
REPO=$(cd "$(dirname "$0")/.." && pwd -P)
VENV=/opt/hp3d-venv

if [ $# -eq 0 ]; then
    echo "usage: scripts/in-trixie.sh CMD [ARG...]" >&2
    exit 2
fi
if [ ! -x "$ROOT/usr/bin/python3" ]; then
    echo "error: no Debian 13 root at $ROOT: run scripts/bootstrap-trixie.sh first" >&2
    exit 1
fi
if [ "$(id -u)" != 0 ]; then  # mounts and chroot need root
    if ! command -v sudo >/dev/null; then
        echo "error: scripts/in-trixie.sh needs root (mounts, chroot)" >&2
        exit 1
    fi
    exec sudo env HP3D_TRIXIE="$ROOT" "$REPO/scripts/in-trixie.sh" "$@"
fi

# The environment inside: a clean one, with what the caller's settings mean for a run.
envs=(
    "PATH=$VENV/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    "HOME=/root" "USER=root" "LOGNAME=root" "LANG=C.UTF-8" "VIRTUAL_ENV=$VENV"
)
for name in $(compgen -e); do
    case "$name" in
        TERM|COLUMNS|TZ|CI|HP3D_*|PYTEST_ADDOPTS|FORCE_COLOR|NO_COLOR) ;;
        http_proxy|https_proxy|no_proxy|HTTP_PROXY|HTTPS_PROXY|NO_PROXY|all_proxy|ALL_PROXY) ;;
        SSL_CERT_FILE|SSL_CERT_DIR|REQUESTS_CA_BUNDLE|CURL_CA_BUNDLE|PIP_CERT) ;;
        *) continue ;;
    esac
    envs+=("$name=${!name}")
done

# Runs in the new mount namespace: make the mounts, then become CMD (exec: same pid, so signals and
# the exit status are CMD's own).
# shellcheck disable=SC2016  # expanded by the inner bash, not here
inner='
set -eu
root=$1 repo=$2 nenv=$3
shift 3
mount -t proc proc "$root/proc"
mount --bind /sys "$root/sys"
mount -o remount,bind,ro "$root/sys"
mkdir -p "$root/dev/shm"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$root/dev/pts"
mount --bind "$root/dev/pts/ptmx" "$root/dev/ptmx"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/tmp"
mkdir -p "$root$repo"  # after /tmp: a clone below /tmp gets its mount point in the tmpfs
mount --bind "$repo" "$root$repo"
envs=()
while [ "$nenv" -gt 0 ]; do envs+=("$1"); shift; nenv=$((nenv - 1)); done
exec chroot "$root" /usr/bin/env -i "${envs[@]}" \
    /bin/sh -c '\''cd "$1" && shift && exec "$@"'\'' sh "$repo" "$@"
'
exec unshare --mount --propagation private -- \
    bash -c "$inner" in-trixie "$ROOT" "$REPO" "${#envs[@]}" "${envs[@]}" "$@"
