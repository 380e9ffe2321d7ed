#!/usr/bin/env bash
# Create or update the Debian 13 (trixie) root where the add-on's tests run on CPython 3.13 with
# numpy 2, the Python of Blender 5.1/5.2: Debian's blender 4.3 package (a real `blender` binary that
# embeds Python 3.13) and a venv at /opt/hp3d-venv made with the root's python3.13 holding
# requirements/py313.txt (the bpy 5.2 LTS module and the engine's stack). Run commands in it with
# scripts/in-trixie.sh.
#
# The root lives outside the repository, in $HP3D_TRIXIE (default /var/cache/humanpose3d/trixie),
# so fresh clones (CI's) reuse it. Idempotent like scripts/bootstrap.sh: does nothing when
# requirements/py313.txt and this script have not changed since its last successful run (their hash
# is kept in the venv's .hp3d-stamp); otherwise it brings the root up to date in place (debootstrap
# only when there is no root yet). `rm -rf` the folder to start over. Needs root (debootstrap,
# chroot, mounts; re-runs itself through sudo) and reaches only Debian's mirror and pip's index,
# set up inside the root the way the host's apt and pip are (proxies, CA bundle, index URLs).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd -P)

ROOT=${HP3D_TRIXIE:-/var/cache/humanpose3d/trixie}
MIRROR=${HP3D_TRIXIE_MIRROR:-http://deb.debian.org/debian}
VENV=/opt/hp3d-venv  # inside the root
STAMP=$ROOT$VENV/.hp3d-stamp
want=$(cat requirements/py313.txt scripts/bootstrap-trixie.sh | sha256sum | cut -d' ' -f1)

say() { echo "bootstrap-trixie: $*" >&2; }
die() { echo "error: $*" >&2; exit 1; }
up_to_date() {
    [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -x "$ROOT$VENV/bin/python" ] \
        && [ -x "$ROOT/usr/bin/blender" ]
}

up_to_date && exit 0
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || die "scripts/bootstrap-trixie.sh needs root (debootstrap, chroot, mounts)"
    exec sudo env HP3D_TRIXIE="$ROOT" HP3D_TRIXIE_MIRROR="$MIRROR" "$REPO/scripts/bootstrap-trixie.sh"
fi
case "$ROOT" in /*) ;; *) die "HP3D_TRIXIE must be an absolute path, not $ROOT" ;; esac
case "$ROOT/" in "$REPO"/*) die "HP3D_TRIXIE ($ROOT) must be outside the repository" ;; esac
for tool in unshare chroot mount flock; do
    command -v "$tool" >/dev/null || die "$tool not found (util-linux / coreutils)"
done

# One bootstrap at a time per root; a second one waits, then finds the work done.
mkdir -p "$(dirname "$ROOT")"
exec 9>"$ROOT.lock"
flock 9
up_to_date && exit 0
t0=$SECONDS
say "setting up $ROOT: Debian 13, Python 3.13, bpy 5.2, blender 4.3 (first time: about 2 min, 3.2 GB)"
in_root() { HP3D_TRIXIE="$ROOT" scripts/in-trixie.sh "$@"; }

# Nothing may be mounted below a folder that is about to be deleted (rm would go into the mount).
no_mounts_under() {
    local dir=$1
    if awk -v d="$dir" '$5 == d || index($5, d "/") == 1 { hit = 1 } END { exit !hit }' /proc/self/mountinfo
    then
        die "something is mounted below $dir (see findmnt); unmount it, then rerun"
    fi
}

# 1. The base system: debootstrap into ROOT.partial, renamed to ROOT once complete, so an
#    interrupted run starts over instead of finishing a half-made root. debootstrap runs in a mount
#    namespace of its own: whatever it mounts inside the target goes away with it, however it ends.
if [ ! -f "$ROOT/.hp3d-base" ]; then
    if ! command -v debootstrap >/dev/null; then
        say "installing debootstrap on the host (apt-get)"
        { apt-get update -qq \
            && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; } \
            || die "could not install debootstrap; install it (apt-get install debootstrap) and rerun"
    fi
    [ -e "$ROOT" ] && ! [ -f "$ROOT/.hp3d-base" ] && [ -n "$(ls -A "$ROOT" 2>/dev/null)" ] \
        && die "$ROOT exists but is not a root made by this script; remove it or set HP3D_TRIXIE"
    partial=$ROOT.partial
    no_mounts_under "$partial"
    rm -rf --one-file-system "$partial"
    say "debootstrap: Debian 13 (trixie) minbase with python3 into $ROOT"
    if ! unshare --mount --propagation private -- \
            debootstrap --variant=minbase --include=python3,python3-venv trixie "$partial" "$MIRROR" \
            >"$ROOT.debootstrap.log" 2>&1; then
        tail -n 5 "$ROOT.debootstrap.log" >&2
        die "debootstrap failed (full log: $ROOT.debootstrap.log)"
    fi
    no_mounts_under "$partial"
    [ -d "$ROOT" ] && rmdir "$ROOT"  # an empty folder at most (checked above)
    echo "trixie minbase python3 python3-venv" > "$partial/.hp3d-base"
    mv "$partial" "$ROOT"
    rm -f "$ROOT.debootstrap.log"
fi

# 2. The host's network settings for apt and pip, (re)written on every run: DNS, the apt.conf files
#    that set how apt reaches a mirror (proxies, Check-Valid-Until, ...), and pip's CA bundle, proxy,
#    timeout and http(s) index URLs (file:// indexes and find-links are host folders with other
#    Pythons' wheels: left out).
say "configuring apt and pip inside the root the way the host's are"
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
[ -f /etc/hosts ] && cp -L /etc/hosts "$ROOT/etc/hosts"
# Blender lists the mounts from /etc/mtab (a warning on every `import bpy` without it)
[ -e "$ROOT/etc/mtab" ] || [ -L "$ROOT/etc/mtab" ] || ln -s ../proc/self/mounts "$ROOT/etc/mtab"
printf '#!/bin/sh\nexit 101\n' > "$ROOT/usr/sbin/policy-rc.d"  # never start services in the root
chmod 755 "$ROOT/usr/sbin/policy-rc.d"
rm -f "$ROOT"/etc/apt/apt.conf.d/50hp3d-host-*
for conf in /etc/apt/apt.conf /etc/apt/apt.conf.d/*; do
    if [ -f "$conf" ] && grep -qiE 'Acquire::(https?::|ftp::|socks::|Check-Valid-Until|Check-Date|Retries)' "$conf"
    then
        cp "$conf" "$ROOT/etc/apt/apt.conf.d/50hp3d-host-$(basename "$conf")"
    fi
done
sec_mirror=${MIRROR%/debian}/debian-security
[ "$sec_mirror" = "$MIRROR/debian-security" ] && sec_mirror=http://deb.debian.org/debian-security
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[ -f "$ROOT$keyring" ] || keyring=/etc/apt/trusted.gpg.d
cat > "$ROOT/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: trixie trixie-updates
Components: main
Signed-By: $keyring

Types: deb
URIs: $sec_mirror
Suites: trixie-security
Components: main
Signed-By: $keyring
EOF
[ -d "$ROOT$keyring" ] && sed -i '/^Signed-By:/d' "$ROOT/etc/apt/sources.list.d/debian.sources"
rm -f "$ROOT/etc/apt/sources.list"

host_cert=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}
[ -f "$host_cert" ] || die "no CA bundle at $host_cert (set PIP_CERT to the host's bundle)"
pip_conf() {  # the host's effective pip settings, as `key value` lines
    local pip
    pip=$(command -v pip3 || command -v pip || true)
    [ -n "$pip" ] || return 0
    "$pip" config list 2>/dev/null | sed -nE "s/^[^.]*\.([a-z-]+)='(.*)'$/\1 \2/p" || true
}
{
    echo "# Written by scripts/bootstrap-trixie.sh from the host's pip settings."
    echo "[global]"
    echo "cert = /etc/ssl/certs/ca-certificates.crt"
    echo "disable-pip-version-check = true"
    pip_conf | while read -r key value; do
        case "$key" in
            timeout|default-timeout) echo "timeout = $value" ;;
            proxy|trusted-host|retries) echo "$key = $value" ;;
            index-url|extra-index-url)
                urls=$(tr ' ' '\n' <<<"$value" | grep -E '^https?://' | tr '\n' ' ' || true)
                [ -n "$urls" ] && echo "$key = ${urls% }" ;;
        esac
    done | sort -u
} > "$ROOT/etc/pip.conf"

# 3. Debian's packages: blender 4.3 (which brings most libraries the wheels load, OpenCV's libGL
#    among them) with python3-numpy (Debian's numpy 2.2: Blender's own numpy, as every Blender
#    ships one; the package does not depend on it), what the wheels need besides: libSM/libICE
#    (bpy), libXt/libOpenGL (bpy's MaterialX GLSL renderer), libEGL/libGLESv2 (mediapipe's
#    libmediapipe.so); assimp-utils, the tests' independent FBX/BVH reader (scripts/test_deps.sh
#    on the host); e2fsprogs for chattr, with which the tests make a folder read-only even for root.
#    No display: nothing here opens a window (blender -b, bpy), so no xvfb.
APT_PKGS=(blender python3-numpy libsm6 libice6 libxt6t64 libopengl0 libegl1 libgles2 assimp-utils
          e2fsprogs)
# shellcheck disable=SC2016  # dpkg-query's own ${field} syntax
installed=$(in_root dpkg-query -W -f='${db:Status-Abbrev}\n' "${APT_PKGS[@]}" 2>/dev/null | grep -c '^ii' || true)
if [ "$installed" != "${#APT_PKGS[@]}" ]; then
    say "apt-get install ${APT_PKGS[*]}"
    # dpkg --configure -a: finishes what an interrupted earlier run left half-configured
    in_root sh -c "export DEBIAN_FRONTEND=noninteractive; dpkg --configure -a && apt-get update -qq \
        && apt-get install -y -qq --no-install-recommends ${APT_PKGS[*]} >/dev/null && apt-get clean" \
        || die "apt-get install failed inside $ROOT"
fi
# `blender` on scripts/in-trixie.sh's PATH: Debian's blender on Debian's Python environment
# (/usr/lib/python3/dist-packages: numpy 2.2), as on a Debian 13 desktop. Blender derives its
# Python's prefix from the first python3.13 on PATH, and that would be the venv's (numpy 2.4, the
# engine's whole stack): the venv leaves PATH first. /usr/bin/blender is the same binary unwrapped.
cat > "$ROOT/usr/local/bin/blender" <<EOF
#!/bin/sh
# Written by scripts/bootstrap-trixie.sh: /usr/bin/blender without the venv (see there).
PATH=\$(printf '%s' "\$PATH" | tr ':' '\\n' | grep -vx '$VENV/bin' | paste -sd: -)
export PATH
unset VIRTUAL_ENV
exec /usr/bin/blender "\$@"
EOF
chmod 755 "$ROOT/usr/local/bin/blender"
# Installed after apt: ca-certificates (if a package pulls it in) regenerates this file.
mkdir -p "$ROOT/etc/ssl/certs"
cp -L "$host_cert" "$ROOT/etc/ssl/certs/ca-certificates.crt"

# 4. The venv: the root's python3.13, requirements/py313.txt's main part with its dependencies
#    (wheels only, torch forbidden), then its --no-deps part.
if ! [ -x "$ROOT$VENV/bin/python" ]; then
    say "creating $VENV in the root with $(in_root python3 --version)"
    in_root python3 -m venv "$VENV" || die "python3 -m venv failed inside $ROOT"
fi
work=$(mktemp -d "$ROOT/var/tmp/hp3d-req.XXXXXX")  # not /tmp: in-trixie.sh mounts a tmpfs there
trap 'rm -rf "$work"' EXIT
sed '/^# --no-deps/,$d' requirements/py313.txt > "$work/deps.txt"
sed -n '/^# --no-deps/,$p' requirements/py313.txt > "$work/nodeps.txt"
printf 'torch<0\ntriton<0\n' > "$work/forbidden.txt"  # any requirement of these fails to resolve
w=${work#"$ROOT"}
say "pip install requirements/py313.txt into $VENV (bpy 5.2.3, mediapipe 1.2.3, numpy 2)"
PIP=("$VENV/bin/python" -m pip install -q --no-cache-dir --only-binary=:all:)
# --no-warn-conflicts: pip would list the --no-deps packages' missing dependencies on updates
in_root "${PIP[@]}" --no-warn-conflicts -c "$w/forbidden.txt" -r "$w/deps.txt" \
    || die "pip install of requirements/py313.txt failed inside $ROOT (torch and triton are forbidden)"
in_root "${PIP[@]}" --no-deps -r "$w/nodeps.txt" \
    || die "pip install --no-deps of requirements/py313.txt's last part failed inside $ROOT"

# 5. Fail fast on a broken stack.
say "checking the stack (bpy 5.2, mediapipe, numpy 2; blender with Python 3.13)"
in_root python - <<'PY' || die "the Python 3.13 stack in $ROOT is broken (see above)"
import importlib.util, sys
import pathlib
import bpy, cv2, mediapipe, numpy, onnxruntime, pandas, scipy  # noqa: F401
for pkg, video in (("Pose2Sim", "Demo_SinglePerson/videos/cam01.mp4"),  # the tests' demo videos
                   ("Sports2D", "Demo/demo.mp4")):
    spec = importlib.util.find_spec(pkg)
    assert spec and pathlib.Path(spec.origin).parent.joinpath(video).is_file(), (pkg, video)
assert sys.version_info[:2] == (3, 13), sys.version
assert bpy.app.version[:2] == (5, 2), bpy.app.version_string
assert numpy.__version__.startswith("2."), numpy.__version__
assert importlib.util.find_spec("torch") is None, "torch must not be installed"
PY
in_root blender -b --factory-startup --python-exit-code 1 --python-expr \
    "import sys, numpy; assert sys.version_info[:2] == (3, 13) and numpy.__version__ >= '2', sys.version" \
    >/dev/null 2>&1 || die "blender (Python 3.13, Debian's numpy) does not run inside $ROOT"
echo "$want" > "$STAMP"
say "ready in $((SECONDS - t0)) s: $ROOT ($(du -sh --one-file-system "$ROOT" | cut -f1))"
