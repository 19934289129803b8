#!/usr/bin/env bash
# Build promtool (default) or, with the argument `prometheus`, the Prometheus server from its Go module at the
# pinned Prometheus release (idempotent; cached). The server is for tests/integration/test_usage_report.py
# (a real Prometheus on 127.0.0.1 over backfilled blocks); it shares the module and build caches with promtool.
#
#   github.com/prometheus/prometheus/cmd/promtool  module v0.<major*100+minor>.<patch>
#   (Prometheus 3.14.0 = module v0.314.0, the prometheus image kube-prometheus-stack 88.5.3 ships:
#    values.yaml prometheus.prometheusSpec.image.tag v3.14.0)
#
# Output: ${GPUFLEET_TOOLS_CACHE:-~/.cache/gpufleet/tools}/prometheus-<version>/{promtool,prometheus}
# The build module (require + upstream's replace directives) is generated next to it, never in the
# repository. Timings are appended to .../build-times.log.
set -euo pipefail

VERSION="${PROMTOOL_VERSION:?PROMTOOL_VERSION is not set (tests/promtool/promtool.mk pins it)}"
CACHE="${GPUFLEET_TOOLS_CACHE:-$HOME/.cache/gpufleet/tools}"
ROOT="$CACHE/prometheus-$VERSION"
TOOL="${1:-promtool}"
case "$TOOL" in
  promtool | prometheus) ;;
  *) printf '[promtool] ERROR: unknown tool %s (promtool or prometheus)\n' "$TOOL" >&2; exit 2 ;;
esac
BIN="$ROOT/$TOOL"
SRC="$ROOT/src"

log() { printf '[%s] %s\n' "$TOOL" "$*" >&2; }
die() { printf '[%s] ERROR: %s\n' "$TOOL" "$*" >&2; exit 1; }

if [ -x "$BIN" ] && "$BIN" --version 2>&1 | grep -q "version $VERSION "; then
  exit 0
fi
command -v go >/dev/null 2>&1 || die "go is not installed (the lab needs it too: make lab-deps)"

IFS=. read -r major minor patch <<<"$VERSION"
MODVER="v0.$((major * 100 + minor)).$patch"
export GOFLAGS=-mod=mod
export GOMAXPROCS="${GOMAXPROCS:-2}"
export CGO_ENABLED=0
export GOTOOLCHAIN=local
JOBS="${GPUFLEET_TOOLS_BUILD_JOBS:-2}"

mkdir -p "$SRC"
gomod="$(go mod download -json "github.com/prometheus/prometheus@$MODVER" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
[ -f "$gomod" ] || die "could not download github.com/prometheus/prometheus@$MODVER from the Go module proxy"
{
  printf 'module gpufleet.local/promtool-build\n\ngo %s\n\n' "$(sed -n 's/^go //p' "$gomod")"
  printf 'require github.com/prometheus/prometheus %s\n\n' "$MODVER"
  # replace directives of the main module are not inherited by a dependent module: copy them.
  sed -n '/^replace /p' "$gomod"
} >"$SRC/go.mod"
: >"$SRC/go.sum"

t0=$(date +%s)
log "building $TOOL $VERSION ($MODVER) with $JOBS jobs; first build takes several minutes"
pkg=github.com/prometheus/common/version
(cd "$SRC" && go build -p "$JOBS" -trimpath \
  -ldflags "-s -w -X $pkg.Version=$VERSION -X $pkg.Branch=release -X $pkg.Revision=$MODVER -X $pkg.BuildUser=gpufleet" \
  -o "$BIN.tmp" "github.com/prometheus/prometheus/cmd/$TOOL")
mv "$BIN.tmp" "$BIN"
t1=$(date +%s)
printf '%s %s-%s %ss\n' "$(date -u +%FT%TZ)" "$TOOL" "$VERSION" "$((t1 - t0))" >>"$CACHE/build-times.log"
log "$TOOL $VERSION built in $((t1 - t0))s: $BIN"
"$BIN" --version
