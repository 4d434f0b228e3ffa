#!/usr/bin/env bash
# Tests the host install without root: `cmake --install` into a DESTDIR, the
# systemd unit (systemd-analyze verify), the packaged config, and the Debian
# package that `cpack -G DEB` builds (contents, conffiles, Depends, scripts).
#
#   package_test.sh BUILD_DIR SOURCE_DIR VERSION
set -euo pipefail

build=$1 src=$2 version=$3
work=$(mktemp -d "${TMPDIR:-/tmp}/ember-package.XXXXXX")
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "package_test: FAIL: $*" >&2; failures=$((failures + 1)); }
die() { echo "package_test: $*" >&2; exit 1; }
has_line() {  # has_line FILE LINE: LINE is a whole line of FILE
  grep -qxF -- "$2" "$1" || fail "$1 has no line '$2'"
}

# Nothing may escape into the build host's /etc (the config's path is absolute).
host_etc_before=$([ -e /etc/ember ] && echo yes || echo no)

# --- cmake --install, DESTDIR-staged ---------------------------------------
stage=$work/stage
DESTDIR=$stage cmake --install "$build" --prefix /usr >"$work/install.log" ||
  die "cmake --install failed: $(cat "$work/install.log")"
for f in usr/bin/ember usr/lib/systemd/system/ember.service etc/ember/ember.yaml \
         usr/share/doc/ember/README.md; do
  [ -f "$stage/$f" ] || fail "cmake --install did not install /$f"
done
[ -x "$stage/usr/bin/ember" ] || fail "/usr/bin/ember is not executable"
cmp -s "$stage/etc/ember/ember.yaml" "$src/packaging/ember.yaml" ||
  fail "/etc/ember/ember.yaml differs from packaging/ember.yaml"
unit=$stage/usr/lib/systemd/system/ember.service
has_line "$unit" "ExecStart=/usr/bin/ember agent --config /etc/ember/ember.yaml"
has_line "$unit" "Type=simple"
has_line "$unit" "Restart=on-failure"
has_line "$unit" "LimitMEMLOCK=infinity"
has_line "$unit" "NoNewPrivileges=yes"
has_line "$unit" "ProtectSystem=strict"
has_line "$unit" "StateDirectory=ember"
has_line "$unit" "CacheDirectory=ember"
has_line "$unit" "CapabilityBoundingSet=CAP_BPF CAP_PERFMON CAP_SYS_PTRACE CAP_DAC_READ_SEARCH CAP_SYSLOG CAP_CHECKPOINT_RESTORE CAP_SYS_RESOURCE"
grep -q "@EMBER_" "$unit" && fail "unsubstituted @EMBER_...@ in the unit"
# ProtectKernelLogs would drop CAP_SYSLOG (kernel symbols).
grep -q "^ProtectKernelLogs=yes" "$unit" && fail "ProtectKernelLogs=yes hides kernel symbols"

# The packaged config is valid, as installed, for the installed binary.
"$stage/usr/bin/ember" agent --config "$stage/etc/ember/ember.yaml" --check >"$work/check.out" ||
  fail "ember agent --check rejects the installed /etc/ember/ember.yaml"

# The unit as systemd reads it (ExecStart pointed at the staged binary, which
# systemd-analyze wants to exist). scripts/install-deps.sh installs systemd
# for it: a test that skips what it cannot run proves nothing.
command -v systemd-analyze >/dev/null ||
  fail "systemd-analyze is missing: run scripts/install-deps.sh (package systemd)"
if command -v systemd-analyze >/dev/null; then
  mkdir -p "$work/unit"
  sed "s|^ExecStart=/usr/bin/ember|ExecStart=$stage/usr/bin/ember|" "$unit" >"$work/unit/ember.service"
  if ! systemd-analyze verify "$work/unit/ember.service" >"$work/verify.log" 2>&1; then
    fail "systemd-analyze verify: $(cat "$work/verify.log")"
  elif grep -qi "unknown\|ignoring\|invalid" "$work/verify.log"; then
    fail "systemd-analyze verify warns: $(cat "$work/verify.log")"
  fi
fi

# The unit follows the prefix given at install time; an existing config is
# kept, never overwritten.
echo "frequency: 7" >"$stage/etc/ember/ember.yaml"
DESTDIR=$stage cmake --install "$build" --prefix /opt/ember >"$work/install2.log" ||
  die "cmake --install --prefix /opt/ember failed: $(cat "$work/install2.log")"
has_line "$stage/opt/ember/lib/systemd/system/ember.service" \
  "ExecStart=/opt/ember/bin/ember agent --config /etc/ember/ember.yaml"
[ "$(cat "$stage/etc/ember/ember.yaml")" = "frequency: 7" ] ||
  fail "a second install overwrote the existing /etc/ember/ember.yaml"

# --- cpack -G DEB --------------------------------------------------------------
(cd "$build" && cpack -G DEB -B "$work/pkg") >"$work/cpack.log" 2>&1 ||
  die "cpack -G DEB failed: $(tail -30 "$work/cpack.log")"
deb=$work/pkg/ember_${version}_amd64.deb
[ -f "$deb" ] || die "cpack did not make $deb: $(ls "$work/pkg")"
dpkg-deb -I "$deb" >"$work/info"
dpkg-deb -f "$deb" >"$work/control"
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' >"$work/contents"
has_line "$work/control" "Package: ember"
has_line "$work/control" "Version: $version"
has_line "$work/control" "Architecture: amd64"
grep -q "^Maintainer: ..*<.*@.*>" "$work/control" || fail "no Maintainer"
grep -q "^Description: ..*" "$work/control" || fail "no Description"
depends=$(sed -n 's/^Depends: //p' "$work/control")
for lib in libbpf1 libelf1 libdw1 libdebuginfod1 libcurl4 libyaml-cpp libprotobuf liblzma5 \
           zlib1g libstdc++6 libc6; do
  case ", $depends" in
    *", $lib"*) ;;
    *) fail "Depends lacks $lib: $depends" ;;
  esac
done
for f in /usr/bin/ember /usr/lib/systemd/system/ember.service /etc/ember/ember.yaml \
         /usr/share/doc/ember/README.md; do
  has_line "$work/contents" "$f"
done
grep -q "^/usr/local" "$work/contents" && fail "the package installs under /usr/local"
grep -Eq "fixture|test|bench|pyroserver" "$work/contents" &&
  fail "the package ships test or bench files: $(grep -E 'fixture|test|bench|pyroserver' "$work/contents")"
mkdir "$work/control.d" "$work/root"
dpkg-deb -e "$deb" "$work/control.d"
[ "$(cat "$work/control.d/conffiles")" = "/etc/ember/ember.yaml" ] ||
  fail "conffiles is not exactly /etc/ember/ember.yaml: $(cat "$work/control.d/conffiles")"
for s in postinst prerm postrm; do
  [ -x "$work/control.d/$s" ] || fail "no executable $s"
  sh -n "$work/control.d/$s" || fail "$s is not valid sh"
done
dpkg-deb -x "$deb" "$work/root"
has_line "$work/root/usr/lib/systemd/system/ember.service" \
  "ExecStart=/usr/bin/ember agent --config /etc/ember/ember.yaml"
cmp -s "$work/root/etc/ember/ember.yaml" "$src/packaging/ember.yaml" ||
  fail "the packaged /etc/ember/ember.yaml differs from packaging/ember.yaml"

host_etc_after=$([ -e /etc/ember ] && echo yes || echo no)
[ "$host_etc_before" = "$host_etc_after" ] || fail "the test created the host's /etc/ember"

if [ "$failures" -ne 0 ]; then
  echo "package_test: $failures failure(s)" >&2
  exit 1
fi
echo "package_test: ok ($(basename "$deb"): $(wc -l <"$work/contents") paths)"
