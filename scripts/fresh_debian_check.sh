#!/usr/bin/env bash
# Runs the README's two set-up commands in a fresh Debian 12, as a new user
# would: a `debootstrap --variant=minbase` root (nothing but essential
# packages), a clean clone of this repository's HEAD inside it, and
#   ./scripts/demo.sh    (installs, builds, shows a profile)
#   ./scripts/test.sh    (installs, builds, runs the whole suite)
# in a chroot with /proc, /sys (with its cgroup and BPF mounts) and /dev bound
# from the host. Whatever either command needs and does not install itself
# fails here; the host's own packages are invisible to it.
#
# Usage (root): scripts/fresh_debian_check.sh [ROOT_DIR]
#   ROOT_DIR  where to make the root (default /var/tmp/ember-fresh-debian; it
#             is removed first and kept afterwards for inspection)
# Environment: MIRROR (default http://deb.debian.org/debian), SKIP_TEST=1 runs
# only the demo.
# Takes about 30 minutes: the whole suite, kernel matrix included, runs inside.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "fresh_debian_check: run as root" >&2; exit 1; }

ROOT=${1:-/var/tmp/ember-fresh-debian}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
command -v debootstrap >/dev/null || {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
}

unmount_all() {
  # Deepest first: the recursive binds carry their own submounts.
  for m in $(awk -v r="$ROOT" '$2 == r || index($2, r "/") == 1 {print $2}' /proc/self/mounts | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
}
trap unmount_all EXIT
unmount_all
# Never into a bind mount (the host's /dev, /sys) that failed to unmount.
if awk -v r="$ROOT" 'index($2, r "/") == 1 {f=1} END {exit !f}' /proc/self/mounts; then
  echo "fresh_debian_check: $ROOT still has mounts; not removing it" >&2
  exit 1
fi
rm -rf --one-file-system "$ROOT"

echo "fresh_debian_check: debootstrap --variant=minbase bookworm $ROOT"
debootstrap --variant=minbase bookworm "$ROOT" "$MIRROR" > "$ROOT.debootstrap.log" 2>&1 ||
  { tail -20 "$ROOT.debootstrap.log"; exit 1; }
# Security updates, as a real Debian 12 has them.
cat > "$ROOT/etc/apt/sources.list" <<EOF
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
# This machine's network trust, not a package: certificate authorities added
# locally (a TLS-inspecting egress proxy's), picked up when the ca-certificates
# package is installed in the root, and the variables that point TLS clients
# (npm fetching Helm, among others) at the system bundle.
mkdir -p "$ROOT/usr/local/share/ca-certificates"
cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/" 2>/dev/null || true
TLS_ENV=()
for v in NODE_EXTRA_CA_CERTS SSL_CERT_FILE SSL_CERT_DIR REQUESTS_CA_BUNDLE; do
  [ -n "${!v:-}" ] && TLS_ENV+=("$v=${!v}")
done

# A clean clone of what is committed (not the working tree).
git clone -q "$(pwd)" "$ROOT/root/ember"

# The root must be a mount point of its own, as on a real machine: runc
# makes "/" private (mount --make-rprivate /) before it builds a container.
mount --bind "$ROOT" "$ROOT"
mount --bind /proc "$ROOT/proc"
mount --rbind /sys "$ROOT/sys"
mount --make-rslave "$ROOT/sys"
mount --rbind /dev "$ROOT/dev"
mount --make-rslave "$ROOT/dev"
mount -t tmpfs tmpfs "$ROOT/tmp"

in_root() {
  chroot "$ROOT" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 "${TLS_ENV[@]}" \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin /bin/bash -c "$1"
}

status=0
echo "fresh_debian_check: ./scripts/demo.sh"
if in_root "cd /root/ember && ./scripts/demo.sh" > "$ROOT.demo.log" 2>&1; then
  echo "fresh_debian_check: demo OK ($(grep -c . "$ROOT.demo.log") lines; $ROOT.demo.log)"
  grep -E "^ember: [0-9]+ samples" "$ROOT.demo.log" || true
else
  status=1
  echo "fresh_debian_check: demo FAILED:"
  tail -30 "$ROOT.demo.log"
fi

if [ "${SKIP_TEST:-0}" != 1 ]; then
  echo "fresh_debian_check: ./scripts/test.sh"
  if in_root "cd /root/ember && ./scripts/test.sh" > "$ROOT.test.log" 2>&1; then
    echo "fresh_debian_check: test OK"
    grep -E "tests passed|Total Test time" "$ROOT.test.log" || true
  else
    status=1
    echo "fresh_debian_check: test FAILED ($ROOT.test.log):"
    grep -E "tests passed|\(Failed\)|\(Timeout\)|Not Run|error" "$ROOT.test.log" | tail -30
  fi
fi
exit $status
