#!/usr/bin/env bash
# Build the lab's binaries from their Go modules (idempotent; skips what is already built).
#
#   etcd                    go.etcd.io/etcd/server/v3   (Debian bookworm's etcd-server is 3.4.23,
#                                                        below what Kubernetes 1.35 supports)
#   kube-apiserver,
#   kube-controller-manager,
#   kube-scheduler, kubectl k8s.io/kubernetes           (via a generated build module, see below)
#   helm                    helm.sh/helm/v3/cmd/helm
#   kwok                    sigs.k8s.io/kwok/cmd/kwok
#
# Output: ${GPUFLEET_LAB_CACHE:-~/.cache/gpufleet/lab}/v<KUBE_VERSION>/bin
# Build modules are generated under .../v<KUBE_VERSION>/src (never in the repository).
# Timings are appended to .../v<KUBE_VERSION>/build-times.log.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
. "$HERE/versions.env"

CACHE="${GPUFLEET_LAB_CACHE:-$HOME/.cache/gpufleet/lab}"
ROOT="$CACHE/v$KUBE_VERSION"
BIN="$ROOT/bin"
SRC="$ROOT/src"
TIMES="$ROOT/build-times.log"
mkdir -p "$BIN" "$SRC"

export GOFLAGS=-mod=mod
export GOMAXPROCS="${GOMAXPROCS:-2}"
export CGO_ENABLED=0
export GOTOOLCHAIN=local
JOBS="${GPUFLEET_LAB_BUILD_JOBS:-2}"
GOBUILD=(go build -p "$JOBS" -trimpath)

log() { printf '[lab-build] %s\n' "$*" >&2; }
die() { printf '[lab-build] ERROR: %s\n' "$*" >&2; exit 1; }

command -v go >/dev/null 2>&1 || die "go is not installed (need Go >= 1.26 for kwok v$KWOK_VERSION)"

# has_version BINARY PATTERN ARGS... : true when BINARY exists and its version output matches.
has_version() {
  local bin="$1" pat="$2"; shift 2
  [ -x "$BIN/$bin" ] && "$BIN/$bin" "$@" 2>&1 | grep -q -- "$pat"
}

kube_has() {  # kube_has BINARY : true when BINARY reports v$KUBE_VERSION
  if [ "$1" = kubectl ]; then has_version kubectl "v$KUBE_VERSION" version --client
  else has_version "$1" "v$KUBE_VERSION" --version; fi
}

timed() {  # timed NAME CMD... : run CMD, record wall seconds
  local name="$1"; shift
  local t0 t1
  t0=$(date +%s)
  "$@"
  t1=$(date +%s)
  printf '%s %s %ss\n' "$(date -u +%FT%TZ)" "$name" "$((t1 - t0))" >>"$TIMES"
  log "$name built in $((t1 - t0))s"
}

build_etcd() {
  local d="$SRC/etcd-$ETCD_VERSION"
  mkdir -p "$d"
  sed "s/@ETCD_VERSION@/$ETCD_VERSION/g" "$HERE/gomod/etcd.go.mod.tmpl" >"$d/go.mod"
  (cd "$d" && "${GOBUILD[@]}" -ldflags "-s -w" -o "$BIN/etcd.tmp" go.etcd.io/etcd/server/v3)
  mv "$BIN/etcd.tmp" "$BIN/etcd"
}

build_kube() {
  local d="$SRC/kubernetes-$KUBE_VERSION" gomod replaces minor
  mkdir -p "$d"
  gomod="$(go mod download -json "k8s.io/kubernetes@v$KUBE_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
  [ -f "$gomod" ] || die "could not download k8s.io/kubernetes@v$KUBE_VERSION from the Go module proxy"
  minor="${KUBE_VERSION#*.}"; minor="${minor%%.*}"
  # Each staging module k8s.io/X => ./staging/src/k8s.io/X becomes k8s.io/X => k8s.io/X v0.<minor>.<patch>
  replaces="$(sed -n 's#^[[:space:]]*\(k8s\.io/[A-Za-z0-9._-]*\) => \./staging/src/.*#\t\1 => \1 v0.'"${KUBE_VERSION#*.}"'#p' "$gomod")"
  [ -n "$replaces" ] || die "no staging replace directives found in $gomod"
  awk -v r="$replaces" '{ if ($0 == "@REPLACES@") print r; else print }' "$HERE/gomod/kubernetes.go.mod.tmpl" \
    | sed "s/@KUBE_VERSION@/$KUBE_VERSION/g" >"$d/go.mod"
  local pkg=k8s.io/component-base/version cpkg=k8s.io/client-go/pkg/version ld
  ld="-s -w"
  for p in $pkg $cpkg; do
    ld="$ld -X $p.gitVersion=v$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ld="$ld -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  local todo=() c
  for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    kube_has "$c" || todo+=("k8s.io/kubernetes/cmd/$c")
  done
  [ "${#todo[@]}" -gt 0 ] || return 0
  mkdir -p "$d/out"
  (cd "$d" && "${GOBUILD[@]}" -ldflags "$ld" -o "$d/out/" "${todo[@]}")
  for c in "${todo[@]}"; do mv "$d/out/${c##*/}" "$BIN/${c##*/}"; done
}

build_helm() {
  local d="$SRC/helm-$HELM_VERSION"
  mkdir -p "$d"
  (cd "$d" && GOBIN="$d" go install -p "$JOBS" -trimpath \
      -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean" \
      "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION")
  mv "$d/helm" "$BIN/helm"
}

build_kwok() {
  local d="$SRC/kwok-$KWOK_VERSION"
  mkdir -p "$d"
  (cd "$d" && GOBIN="$d" go install -p "$JOBS" -trimpath \
      -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=v$KWOK_VERSION" \
      "sigs.k8s.io/kwok/cmd/kwok@v$KWOK_VERSION")
  mv "$d/kwok" "$BIN/kwok"
}

only="${1:-all}"
want() { [ "$only" = all ] || [ "$only" = "$1" ]; }

if want etcd; then
  if has_version etcd "etcd Version: $ETCD_VERSION" --version; then log "etcd $ETCD_VERSION present"; else timed etcd build_etcd; fi
fi
if want kube; then
  ok=1
  for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    kube_has "$c" || ok=0
  done
  if [ $ok = 1 ]; then log "kubernetes v$KUBE_VERSION binaries present"; else timed kubernetes build_kube; fi
fi
if want helm; then
  if has_version helm "v$HELM_VERSION" version --short; then log "helm v$HELM_VERSION present"; else timed helm build_helm; fi
fi
if want kwok; then
  if [ -x "$BIN/kwok" ] && [ -f "$BIN/.kwok-$KWOK_VERSION" ]; then log "kwok v$KWOK_VERSION present"; else timed kwok build_kwok; touch "$BIN/.kwok-$KWOK_VERSION"; fi
fi
log "binaries in $BIN:"
ls -l "$BIN" >&2
