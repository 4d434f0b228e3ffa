#!/usr/bin/env bash
# Builds Ember's container image (packaging/container/Dockerfile) on this
# machine, with no registry: the Debian 12 base is made from Debian's own
# packages with mmdebstrap, imported into the container engine, and the
# Dockerfile installs Ember's .deb on it.
#
#   scripts/build-image.sh [--build DIR] [--deb FILE] [--tag NAME] [--save FILE]
#                          [--engine docker|podman|buildah] [--refresh-base]
#
#   --build DIR     the build directory whose package is installed (default:
#                   build; `cpack -G DEB` makes the .deb there)
#   --deb FILE      install this .deb instead
#   --tag NAME      the image's name (default: ember:<version>, the helm
#                   chart's default image, and ember:latest)
#   --save FILE     also write the image as a docker-archive tarball, for
#                   `ctr -n k8s.io images import FILE` on a node, or `docker load`
#   --engine E      default: docker if its daemon answers, else podman, else buildah
#   --refresh-base  make the base again (it is cached: /var/cache/ember/image)
#
# The base is what the official debian:bookworm-slim is: Debian 12's minbase
# (dpkg, apt and the essential set) with manual pages, documentation other
# than copyright files, and translations left out, by dpkg path excludes that
# stay in the image, so later installs leave them out too; plus the .deb's
# dependencies. It is imported as ember-base:bookworm-slim and never replaces
# a real debian:bookworm-slim.
#
# Run as root (mmdebstrap's root mode; podman's and docker's storage).
# Prints the image's name and size.
set -euo pipefail
self=$(readlink -f "$0")
cd "$(dirname "$self")/.."
root=$(pwd)

build=build deb="" tag="" save="" engine="" refresh=0
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --deb) deb=$2; shift 2 ;;
    --tag) tag=$2; shift 2 ;;
    --save) save=$2; shift 2 ;;
    --engine) engine=$2; shift 2 ;;
    --refresh-base) refresh=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$self" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-image: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
die() { echo "build-image: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "run as root"

version=$(sed -n 's/^project(ember VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
[ -n "$version" ] || die "cannot read the version from CMakeLists.txt"
[ -n "$tag" ] || tag="ember:$version"

# --- the engine --------------------------------------------------------------
if [ -z "$engine" ]; then
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    engine=docker
  elif command -v podman >/dev/null; then
    engine=podman
  elif command -v buildah >/dev/null; then
    engine=buildah
  else
    die "no container engine: a running docker daemon, podman or buildah (scripts/install-deps.sh installs podman)"
  fi
fi
command -v "$engine" >/dev/null || die "$engine is not installed"
command -v mmdebstrap >/dev/null || die "mmdebstrap is not installed (scripts/install-deps.sh installs it)"

work=$(mktemp -d /tmp/ember-image.XXXXXX)
trap 'rm -rf "$work"' EXIT

# --- the package -------------------------------------------------------------
if [ -z "$deb" ]; then
  [ -x "$build/ember" ] || die "no $build/ember: build first (scripts/build.sh), or pass --deb"
  (cd "$build" && cpack -G DEB -B "$work/pkg") >"$work/cpack.log" 2>&1 ||
    die "cpack -G DEB failed: $(tail -20 "$work/cpack.log")"
  deb=$(ls "$work"/pkg/ember_*.deb 2>/dev/null | head -n 1)
  [ -n "$deb" ] || die "cpack made no .deb: $(ls "$work/pkg")"
fi
[ -f "$deb" ] || die "no such package: $deb"

# --- the base ----------------------------------------------------------------
# The package's dependencies (and CA certificates, for HTTPS uploads) go into
# the base, so the image's own layer is Ember alone and a rebuild needs no
# network once the base is cached. The Dockerfile still installs them itself
# on the official debian:bookworm-slim.
deps=$(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed -e 's/|.*//' -e 's/(.*)//' -e 's/[[:space:]]//g' |
       grep -v '^$' | sort -u | paste -sd, -)
deps="ca-certificates${deps:+,$deps}"
# Keyed by everything that shapes it, so a change here makes a new one.
mirror_args=(
  "deb http://deb.debian.org/debian bookworm main"
  "deb http://deb.debian.org/debian bookworm-updates main"
  "deb http://deb.debian.org/debian-security bookworm-security main"
)
slim_opts=(
  --dpkgopt='path-exclude=/usr/share/man/*'
  --dpkgopt='path-exclude=/usr/share/info/*'
  --dpkgopt='path-exclude=/usr/share/locale/*'
  --dpkgopt='path-include=/usr/share/locale/locale.alias'
  --dpkgopt='path-exclude=/usr/share/doc/*'
  --dpkgopt='path-include=/usr/share/doc/*/copyright'
)
cache=/var/cache/ember/image
key=$(printf '%s\n' "${mirror_args[@]}" "${slim_opts[@]}" minbase "$deps" | sha256sum | cut -c1-12)
base_tar=$cache/bookworm-slim-$key.tar
base_tag=ember-base:bookworm-slim
mkdir -p "$cache"
if [ "$refresh" -eq 1 ] || [ ! -s "$base_tar" ]; then
  echo "build-image: making the Debian 12 base with mmdebstrap (about a minute)" >&2
  mmdebstrap --variant=minbase --mode=root "${slim_opts[@]}" --include="$deps" \
    --aptopt='Acquire::Retries "3"' \
    bookworm "$work/base.tar" "${mirror_args[@]}" >"$work/mmdebstrap.log" 2>&1 ||
    die "mmdebstrap failed: $(tail -20 "$work/mmdebstrap.log")"
  mv "$work/base.tar" "$base_tar"
fi
"$engine" import "$base_tar" "$base_tag" >"$work/import.log" 2>&1 ||
  die "$engine import of the base failed: $(tail -20 "$work/import.log")"

# --- the image ---------------------------------------------------------------
ctx=$work/context
mkdir -p "$ctx"
cp packaging/container/Dockerfile "$ctx/"
cp "$deb" "$ctx/ember.deb"
# The image this tag named before: removed once replaced, so rebuilds do not
# pile up untagged images (7 MiB of layers each).
old_id=$("$engine" image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
# Host networking for the one RUN step: on a base without the dependencies
# (the official one) apt fetches them, and works wherever it works on the host.
case "$engine" in
  docker) docker build --network host --build-arg BASE="$base_tag" -t "$tag" -t ember:latest "$ctx" ;;
  podman) podman build --network host --pull=never --build-arg BASE="$base_tag" -t "$tag" -t ember:latest "$ctx" ;;
  buildah) buildah bud --network host --pull-never --build-arg BASE="$base_tag" -t "$tag" -t ember:latest "$ctx" ;;
esac >"$work/build.log" 2>&1 || die "$engine build failed: $(tail -30 "$work/build.log")"

new_id=$("$engine" image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then
  "$engine" rmi "$old_id" >/dev/null 2>&1 || true  # still used by a container: kept
fi

if [ -n "$save" ]; then
  case "$engine" in
    docker) docker save -o "$save" "$tag" ;;
    podman) podman save --format docker-archive -o "$save" "$tag" ;;
    buildah) buildah push "$tag" "docker-archive:$save:$tag" ;;
  esac || die "saving $tag to $save failed"
fi
size=$("$engine" image inspect --format '{{.Size}}' "$tag" 2>/dev/null || echo 0)
echo "build-image: $tag ($engine, $((size / 1024 / 1024)) MiB) from $(basename "$deb")"
