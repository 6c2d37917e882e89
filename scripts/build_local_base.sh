#!/usr/bin/env bash
# Build a base image for the Dockerfile from Debian's own packages, for machines where no
# registry serves base images: Debian bookworm (debootstrap minbase) with python3 (3.11) and
# python3-venv, imported into podman as localhost/localdebian:bookworm. Then:
#   podman build --build-arg BASE=localhost/localdebian:bookworm ...
#
# Usage: scripts/build_local_base.sh [--force]
#   Does nothing when the image already exists (unless --force). Needs root, podman and
#   debootstrap (apt-get install -y podman runc debootstrap). MIRROR=URL picks the Debian mirror;
#   default: the one apt uses on this machine. BASE_TAG=NAME changes the image name.
set -euo pipefail

TAG="${BASE_TAG:-localhost/localdebian:bookworm}"
SUITE=bookworm

die() { echo "error: $*" >&2; exit 1; }

# The first `deb` mirror apt uses for $SUITE (deb822 .sources files, then one-line .list files).
apt_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v suite="$SUITE" 'BEGIN { RS = ""; FS = "\n" }
      {
        types = ""; uris = ""; suites = ""
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^Types:/) types = $i
          if ($i ~ /^URIs:/) uris = $i
          if ($i ~ /^Suites:/) suites = $i
        }
        if (types ~ /[ \t]deb([ \t]|$)/ && (suites " ") ~ ("[ \t]" suite "[ \t]")) {
          sub(/^URIs:[ \t]*/, "", uris); split(uris, u, /[ \t]+/); print u[1]; exit
        }
      }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk -v suite="$SUITE" '$1 == "deb" {
        i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
        if ($(i + 1) == suite) { print $i; exit }
      }' "$f"
  done
}

if [ "${1:-}" != "--force" ] && podman image exists "$TAG"; then
  echo "$TAG already exists (--force builds it again)"
  exit 0
fi
[ "$(id -u)" = 0 ] || die "debootstrap needs root"
command -v debootstrap >/dev/null || die "debootstrap not found: apt-get install -y debootstrap"
MIRROR="${MIRROR:-$(apt_mirror | head -n 1)}"
[ -n "$MIRROR" ] || die "no Debian $SUITE mirror found in apt's sources: set MIRROR=URL"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "debootstrap $SUITE from $MIRROR (about a minute)..."
if ! debootstrap --variant=minbase --include=python3,python3-venv "$SUITE" "$work/root" \
    "$MIRROR" > "$work/debootstrap.log" 2>&1; then
  tail -n 20 "$work/debootstrap.log" >&2
  die "debootstrap failed (log above)"
fi
# Downloaded .debs and package lists are not needed in an image (about 95 MB).
rm -rf "$work"/root/var/cache/apt/archives/*.deb "$work"/root/var/lib/apt/lists/*
tar -C "$work/root" -c . | podman import --change 'CMD ["/bin/bash"]' - "$TAG" >/dev/null
echo "built $TAG ($(podman image inspect --format '{{.Size}}' "$TAG") bytes)"
