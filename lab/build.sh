#!/usr/bin/env bash
# Build the lab's binaries from pinned sources (idempotent; skips what is already built).
#
#   bash lab/build.sh [SELECTOR...]      (default: all)
#   selectors: all | core (etcd kube helm kwok) | controllers (the rest) | one name below
#
# Control plane -> $CACHE/v<KUBE_VERSION>/bin:
#   etcd                    go.etcd.io/etcd/server/v3   (Debian bookworm's etcd-server is 3.4.23,
#                                                        below what Kubernetes 1.35 supports)
#   kube-apiserver,
#   kube-controller-manager,
#   kube-scheduler, kubectl k8s.io/kubernetes           (via a generated build module, see below)
#   helm                    helm.sh/helm/v3/cmd/helm
#   kwok                    sigs.k8s.io/kwok/cmd/kwok
#
# Controllers -> $CACHE/controllers/bin (ctrl_bin; independent of KUBE_VERSION):
#   kueue            kueue                                   sigs.k8s.io/kueue/cmd/kueue (go install)
#   local-path-provisioner  local-path-provisioner           github.com/rancher/local-path-provisioner (go install)
#   trainer          trainer-controller-manager              github.com/kubeflow/trainer/v2/cmd/trainer-controller-manager
#                                                            (go install; no replace in its go.mod)
#   jobset           jobset                                  source extract (the proxy refuses sigs.k8s.io/jobset's
#                                                            version list); its main package is the module root
#   cert-manager     cert-manager-{controller,webhook,cainjector}
#                    cmd/ modules from the source extract (they are not on the Go module proxy), main
#                    module from the proxy; github.com/Venafi/vcert/v5 (controller) from the extract
#                    vcert-v<VER> where it exists, else from the proxy
#   volcano          vc-scheduler, vc-controller-manager, vc-webhook-manager   source extract
#   kserve           kserve-manager, kserve-llmisvc                            source extract
#   slurm-operator   slurm-operator, slurm-operator-webhook                    source extract
#   gpu-operator     gpu-operator, and its state manifests laid out as in the operator image's
#                    /opt/gpu-operator (assets/* at the top, manifests/ below) in
#                    $CACHE/controllers/gpu-operator-v<VER>
#   Source extracts: ${GPUFLEET_UPSTREAM_SRC:-$GPUFLEET_SHARED/upstream/src}/<project>-v<VER>
#   (GPUFLEET_SHARED defaults to ../shared beside the repository). They are read-only: each build
#   copies its extract to $CACHE/controllers/src first. A source build writes the marker
#   $CACHE/controllers/bin/.<project>-v<VER> (version + sha256 of the extract) and is skipped
#   while the marker matches and all its binaries exist; module builds are checked with `go version -m`.
#
# Build modules are generated under .../v<KUBE_VERSION>/src and .../controllers/src (never in
# the repository). Timings are appended to .../v<KUBE_VERSION>/build-times.log.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env disable=SC1091  # (shellcheck -x follows it)
. "$HERE/versions.env"

CACHE="${GPUFLEET_LAB_CACHE:-$HOME/.cache/gpufleet/lab}"
ROOT="$CACHE/v$KUBE_VERSION"
BIN="$ROOT/bin"
SRC="$ROOT/src"
TIMES="$ROOT/build-times.log"
CTRL="$CACHE/controllers"
CTRL_SRC="$CTRL/src"
ctrl_bin() { printf '%s\n' "$CTRL/bin"; }  # where the controller binaries go (lab.py reads the same path)
CTRL_BIN="$(ctrl_bin)"
SHARED="${GPUFLEET_SHARED:-$(cd "$HERE/../.." && pwd)/shared}"
UPSTREAM_SRC="${GPUFLEET_UPSTREAM_SRC:-$SHARED/upstream/src}"
mkdir -p "$BIN" "$SRC"

export GOFLAGS=-mod=mod
export GOMAXPROCS="${GOMAXPROCS:-2}"
export CGO_ENABLED=0
export GOTOOLCHAIN=local
JOBS="${GPUFLEET_LAB_BUILD_JOBS:-2}"
GOBUILD=(go build -p "$JOBS" -trimpath)
EPOCH=1970-01-01T00:00:00Z  # fixed build date for reproducible version stamps

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

# The Kubernetes version `helm template` (and lint) assume without a cluster: helm's Makefile sets it from its
# client-go (v0.33.x -> 1.33). Left out, Helm assumes v1.20.0 and refuses every chart with a later kubeVersion
# (cert-manager, KServe, Slinky, ...): the lab's chart mirror and the air-gap render would fail on them.
helm_kube_ldflags() {
  local gomod cg major minor p out=""
  gomod="$(go mod download -json "helm.sh/helm/v3@v$HELM_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
  cg="$(sed -n 's#^[[:space:]]*k8s.io/client-go v\([0-9]*\)\.\([0-9]*\)\..*#\1 \2#p' "$gomod" | head -1)"
  [ -n "$cg" ] || die "no k8s.io/client-go requirement found in $gomod"
  major=$(( ${cg% *} + 1 )); minor="${cg#* }"
  for p in pkg/chartutil pkg/lint/rules; do
    out="$out -X helm.sh/helm/v3/$p.k8sVersionMajor=$major -X helm.sh/helm/v3/$p.k8sVersionMinor=$minor"
  done
  echo "$out"
}

helm_has() {  # the pinned version, built with the Kubernetes version stamp (an older cache's helm lacks it)
  has_version helm "v$HELM_VERSION" version --short && go version -m "$BIN/helm" | grep -q 'chartutil.k8sVersionMinor='
}

build_helm() {
  local d="$SRC/helm-$HELM_VERSION" kube
  mkdir -p "$d"
  kube="$(helm_kube_ldflags)"
  (cd "$d" && GOBIN="$d" go install -p "$JOBS" -trimpath \
      -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean$kube" \
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

# ---- controllers ------------------------------------------------------------------------------

# Source extracts: extract NAME -> its directory (the caller checks it with need_src).
extract() { printf '%s/%s\n' "$UPSTREAM_SRC" "$1"; }

need_src() {  # need_src EXTRACT WHAT DIR... : stop unless the extract is there with each DIR (its mains)
  local d x="$1" what="$2" m; shift 2
  d="$(extract "$x")"
  [ -d "$d" ] || die "$d not found: the $what must be there to build the lab's controllers" \
    "(set GPUFLEET_SHARED or GPUFLEET_UPSTREAM_SRC; see ../shared/upstream/src/README.md)"
  for m in "$@"; do [ -e "$d/$m" ] || die "$d/$m not found: $d is not a complete extract of the $what"; done
}

src_hash() {  # src_hash DIR [SUB...] : sha256 over the names and contents of every file under DIR[/SUB]
  local d="$1"; shift
  (cd "$d" && find "${@:-.}" -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
}

# built MARKER CONTENT BINARY... : true when the marker holds CONTENT and every binary exists
built() {
  local m="$CTRL_BIN/$1" want="$2" b; shift 2
  [ -f "$m" ] && [ "$(cat "$m")" = "$want" ] || return 1
  for b in "$@"; do [ -x "$CTRL_BIN/$b" ] || return 1; done
}

# mod_has BINARY MODULE VERSION : true when BINARY's build info lists MODULE at VERSION
mod_has() {
  [ -x "$CTRL_BIN/$1" ] && go version -m "$CTRL_BIN/$1" 2>/dev/null \
    | grep -q "^[[:space:]]*\(mod\|dep\)[[:space:]]\+$2[[:space:]]\+$3\([[:space:]]\|$\)"
}

fresh_copy() {  # fresh_copy EXTRACT -> prints the build dir (a writable copy of the extract)
  local d="$CTRL_SRC/$1"
  rm -rf "$d"
  mkdir -p "$d"
  cp -R "$(extract "$1")/." "$d"  # /. : also when the extract is a symbolic link
  chmod -R u+w "$d"
  printf '%s\n' "$d"
}

# install_bins OUTDIR FROM:TO... : move built binaries into ctrl_bin under their lab names
install_bins() {
  local out="$1" p; shift
  mkdir -p "$CTRL_BIN"
  for p in "$@"; do
    mv -f "$out/${p%%:*}" "$CTRL_BIN/${p#*:}"
    log "  $(ctrl_bin)/${p#*:}: $(stat -c %s "$CTRL_BIN/${p#*:}") bytes"
  done
}

build_kueue() {
  local d="$CTRL_SRC/kueue-v$KUEUE_VERSION" v=sigs.k8s.io/kueue/pkg/version
  mkdir -p "$d"
  (cd "$d" && GOBIN="$d" go install -p "$JOBS" -trimpath \
      -ldflags "-s -w -X $v.GitVersion=v$KUEUE_VERSION -X $v.GitCommit=$KUEUE_COMMIT -X $v.BuildDate=$EPOCH" \
      "sigs.k8s.io/kueue/cmd/kueue@v$KUEUE_VERSION")
  install_bins "$d" kueue:kueue
}

build_local_path_provisioner() {
  local d="$CTRL_SRC/local-path-provisioner-v$LOCAL_PATH_PROVISIONER_VERSION"
  mkdir -p "$d"
  (cd "$d" && GOBIN="$d" go install -p "$JOBS" -trimpath \
      -ldflags "-s -w -X main.VERSION=v$LOCAL_PATH_PROVISIONER_VERSION" \
      "github.com/rancher/local-path-provisioner@v$LOCAL_PATH_PROVISIONER_VERSION")
  install_bins "$d" local-path-provisioner:local-path-provisioner
}

build_trainer() {
  local d="$CTRL_SRC/trainer-v$TRAINER_VERSION"
  mkdir -p "$d"
  (cd "$d" && GOBIN="$d" go install -p "$JOBS" -trimpath -ldflags "-s -w" \
      "github.com/kubeflow/trainer/v2/cmd/trainer-controller-manager@v$TRAINER_VERSION")
  install_bins "$d" trainer-controller-manager:trainer-controller-manager
}

build_jobset() {  # the main package is the module root: `go build .` names the binary after the module (jobset)
  local d v=sigs.k8s.io/jobset/pkg/version
  d="$(fresh_copy "$JOBSET_X")"
  mkdir -p "$d/out"
  (cd "$d" && "${GOBUILD[@]}" -ldflags "-s -w -X $v.GitVersion=v$JOBSET_VERSION -X $v.GitCommit=$JOBSET_COMMIT" \
      -o "$d/out/jobset" .)
  install_bins "$d/out" jobset:jobset
}

CM_MAINS=(cmd/controller:cert-manager-controller cmd/webhook:cert-manager-webhook cmd/cainjector:cert-manager-cainjector)
VCERT_X="vcert-v$CERT_MANAGER_VCERT_VERSION"
VCERT_MOD=github.com/Venafi/vcert/v5
vcert_from_src() { [ -f "$(extract "$VCERT_X")/vcert.go" ] && [ -d "$(extract "$VCERT_X")/pkg" ]; }  # else the proxy

build_cert_manager() {
  local x="$CM_X" d c gomod req u=github.com/cert-manager/cert-manager/pkg/util
  d="$CTRL_SRC/$x"
  rm -rf "$d"; mkdir -p "$d/cmd" "$d/out"
  for c in "${CM_MAINS[@]%%:*}"; do cp -R "$(extract "$x")/$c/." "$d/$c"; done
  sed "s/@CERT_MANAGER_VERSION@/$CERT_MANAGER_VERSION/g" "$HERE/gomod/cert-manager.go.mod.tmpl" >"$d/go.mod"
  cat "$d"/cmd/*/go.sum | LC_ALL=C sort -u >"$d/go.sum"
  gomod="$(go mod download -json "github.com/cert-manager/cert-manager@v$CERT_MANAGER_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
  [ -f "$gomod" ] || die "could not download github.com/cert-manager/cert-manager@v$CERT_MANAGER_VERSION from the Go module proxy"
  req="$(awk -v m="$VCERT_MOD" '$1 == m { print $2 }' "$gomod")"
  [ "$req" = "v$CERT_MANAGER_VCERT_VERSION" ] || die "cert-manager v$CERT_MANAGER_VERSION requires $VCERT_MOD $req, not CERT_MANAGER_VCERT_VERSION=$CERT_MANAGER_VCERT_VERSION (lab/versions.env)"
  if vcert_from_src; then
    cp -R "$(extract "$VCERT_X")/." "$d/vcert"
    (cd "$d" && go mod edit -replace "$VCERT_MOD=./vcert")
  fi
  chmod -R u+w "$d"
  (cd "$d" && "${GOBUILD[@]}" -o "$d/out/" \
      -ldflags "-s -w -X $u.AppVersion=v$CERT_MANAGER_VERSION -X $u.AppGitCommit=$CERT_MANAGER_COMMIT -X $u.AppGitState=clean" \
      github.com/cert-manager/cert-manager/controller-binary \
      github.com/cert-manager/cert-manager/webhook-binary \
      github.com/cert-manager/cert-manager/cainjector-binary)
  install_bins "$d/out" controller-binary:cert-manager-controller webhook-binary:cert-manager-webhook \
    cainjector-binary:cert-manager-cainjector
}

# build_src EXTRACT LDFLAGS MAIN:NAME... : one `go build` of all the mains of a source extract
build_src() {
  local x="$1" ld="$2" d pkgs=() outs=() m; shift 2
  d="$(fresh_copy "$x")"
  for m in "$@"; do pkgs+=("./${m%%:*}"); outs+=("${m##*/}"); done  # cmd/x:name -> x:name
  mkdir -p "$d/out"
  (cd "$d" && "${GOBUILD[@]}" -ldflags "-s -w $ld" -o "$d/out/" "${pkgs[@]}")
  install_bins "$d/out" "${outs[@]}"
}

VOLCANO_MAINS=(cmd/scheduler:vc-scheduler cmd/controller-manager:vc-controller-manager cmd/webhook-manager:vc-webhook-manager)
KSERVE_MAINS=(cmd/manager:kserve-manager cmd/llmisvc:kserve-llmisvc)
SLURM_MAINS=(cmd/manager:slurm-operator cmd/webhook:slurm-operator-webhook)
GPU_OPERATOR_MAINS=(cmd/gpu-operator:gpu-operator)
GPU_OPERATOR_HOME="$CTRL/gpu-operator-v$GPU_OPERATOR_VERSION"  # = the image's /opt/gpu-operator

build_gpu_operator() {
  local x="gpu-operator-v$GPU_OPERATOR_VERSION" i=github.com/NVIDIA/gpu-operator/internal/info
  build_src "$x" "-X $i.version=v$GPU_OPERATOR_VERSION -X $i.gitCommit=$GPU_OPERATOR_COMMIT" "${GPU_OPERATOR_MAINS[@]}"
  rm -rf "$GPU_OPERATOR_HOME"; mkdir -p "$GPU_OPERATOR_HOME"
  cp -R "$CTRL_SRC/$x/assets/." "$GPU_OPERATOR_HOME/"            # as the upstream Dockerfile:
  cp -R "$CTRL_SRC/$x/manifests" "$GPU_OPERATOR_HOME/manifests"  # assets/* and manifests/ in /opt/gpu-operator
  log "  gpu-operator state manifests (its /opt/gpu-operator): $GPU_OPERATOR_HOME"
}

# mark_of EXTRACT [SUB...] : marker content: the extract's pinned version and source hash
mark_of() { local x="$1"; shift; printf 'v%s %s' "${x##*-v}" "$(src_hash "$(extract "$x")" "$@")"; }

# src_project NAME EXTRACT MARK BINARY... -- CMD... : run CMD (timed as NAME) unless the marker
# .EXTRACT holds MARK and every BINARY exists
src_project() {
  local name="$1" x="$2" mark="$3" bins=(); shift 3
  while [ "$1" != -- ]; do bins+=("$1"); shift; done; shift
  if built ".$x" "$mark" "${bins[@]}"; then log "$x present"; return 0; fi
  rm -f "$CTRL_BIN/.$x"
  timed "$name" "$@"
  printf '%s\n' "$mark" >"$CTRL_BIN/.$x"
}

# ---- selection --------------------------------------------------------------------------------

CORE=(etcd kube helm kwok)
CONTROLLERS=(kueue local-path-provisioner trainer jobset cert-manager volcano kserve slurm-operator gpu-operator)
sel=("$@"); [ "${#sel[@]}" -gt 0 ] || sel=(all)
for s in "${sel[@]}"; do
  case " all core controllers ${CORE[*]} ${CONTROLLERS[*]} " in
    *" $s "*) ;;
    *) die "unknown selector '$s' (all, core, controllers, ${CORE[*]}, ${CONTROLLERS[*]})" ;;
  esac
done
want() {  # want NAME : NAME is selected by itself, by its group, or by all
  local s g=core
  case " ${CONTROLLERS[*]} " in *" $1 "*) g=controllers ;; esac
  for s in "${sel[@]}"; do [ "$s" = all ] || [ "$s" = "$g" ] || [ "$s" = "$1" ] && return 0; done
  return 1
}

# Check every needed source extract before the first (long) build.
CM_X="cert-manager-v$CERT_MANAGER_VERSION"
VOLCANO_X="volcano-v$VOLCANO_VERSION"
KSERVE_X="kserve-v$KSERVE_VERSION"
SLURM_X="slurm-operator-v$SLURM_OPERATOR_VERSION"
GPU_X="gpu-operator-v$GPU_OPERATOR_VERSION"
JOBSET_X="jobset-v$JOBSET_VERSION"
# cert-manager's cmd modules are not on the Go module proxy and its controller needs a vcert version the
# proxy refuses, so it builds only from source extracts. Without them (and without binaries built from them
# earlier) the build goes on and the lab runs cert-manager, and the charts that need its certificates, as
# STAND-INs (lab/gpufleet_lab/charts.py; docs/lab.md says why).
CM_SKIP=""
cm_sources() {  # prints why the cert-manager sources are not usable, or nothing
  local d m
  d="$(extract "$CM_X")"
  [ -d "$d" ] || { echo "$d not found (git archive v$CERT_MANAGER_VERSION cmd/controller cmd/webhook cmd/cainjector of github.com/cert-manager/cert-manager; those modules are not on the Go module proxy)"; return; }
  for m in "${CM_MAINS[@]%%:*}"; do [ -e "$d/$m" ] || { echo "$d/$m not found"; return; }; done
  vcert_from_src || go mod download "$VCERT_MOD@v$CERT_MANAGER_VCERT_VERSION" >/dev/null 2>&1 \
    || echo "$(extract "$VCERT_X") not found, and the Go module proxy refuses $VCERT_MOD@v$CERT_MANAGER_VCERT_VERSION, which cert-manager's controller needs"
}
cm_built() {  # the three binaries exist and say they are cert-manager v$CERT_MANAGER_VERSION
  local b
  for b in "${CM_MAINS[@]#*:}"; do
    mod_has "$b" github.com/cert-manager/cert-manager "v$CERT_MANAGER_VERSION" || return 1
  done
}
if want cert-manager; then
  CM_SKIP="$(cm_sources)"
fi
if want volcano; then
  need_src "$VOLCANO_X" "Volcano source (github.com/volcano-sh/volcano v$VOLCANO_VERSION)" "${VOLCANO_MAINS[@]%%:*}"
fi
if want kserve; then
  need_src "$KSERVE_X" "KServe source (github.com/kserve/kserve v$KSERVE_VERSION)" "${KSERVE_MAINS[@]%%:*}"
fi
if want slurm-operator; then
  need_src "$SLURM_X" "Slinky slurm-operator source (github.com/SlinkyProject/slurm-operator v$SLURM_OPERATOR_VERSION)" "${SLURM_MAINS[@]%%:*}"
fi
if want jobset; then
  need_src "$JOBSET_X" "JobSet source (sigs.k8s.io/jobset v$JOBSET_VERSION)" main.go go.mod
fi
if want gpu-operator; then
  need_src "$GPU_X" "NVIDIA GPU Operator source (github.com/NVIDIA/gpu-operator v$GPU_OPERATOR_VERSION)" "${GPU_OPERATOR_MAINS[@]%%:*}" assets manifests
fi

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
  if helm_has; then log "helm v$HELM_VERSION present"; else timed helm build_helm; fi
fi
if want kwok; then
  if [ -x "$BIN/kwok" ] && [ -f "$BIN/.kwok-$KWOK_VERSION" ]; then log "kwok v$KWOK_VERSION present"; else timed kwok build_kwok; touch "$BIN/.kwok-$KWOK_VERSION"; fi
fi

if want kueue; then
  if mod_has kueue sigs.k8s.io/kueue "v$KUEUE_VERSION"; then log "kueue v$KUEUE_VERSION present"; else timed kueue build_kueue; fi
fi
if want local-path-provisioner; then
  if mod_has local-path-provisioner github.com/rancher/local-path-provisioner "v$LOCAL_PATH_PROVISIONER_VERSION"; then
    log "local-path-provisioner v$LOCAL_PATH_PROVISIONER_VERSION present"
  else timed local-path-provisioner build_local_path_provisioner; fi
fi
if want trainer; then
  if mod_has trainer-controller-manager github.com/kubeflow/trainer/v2 "v$TRAINER_VERSION"; then
    log "trainer v$TRAINER_VERSION present"
  else timed trainer build_trainer; fi
fi
if want jobset; then
  src_project jobset "$JOBSET_X" "$(mark_of "$JOBSET_X")" jobset -- build_jobset
fi
if want cert-manager; then
  if [ -z "$CM_SKIP" ]; then
    # Only cmd/{controller,webhook,cainjector} come from the extract (and vcert, where it is one).
    mark="$(mark_of "$CM_X" "${CM_MAINS[@]%%:*}")"
    if vcert_from_src; then mark="$mark $(mark_of "$VCERT_X")"; fi
    src_project cert-manager "$CM_X" "$mark" "${CM_MAINS[@]#*:}" -- build_cert_manager
  elif cm_built; then
    log "cert-manager v$CERT_MANAGER_VERSION present (built earlier from source extracts; now: $CM_SKIP)"
  else
    log "WARNING: cert-manager v$CERT_MANAGER_VERSION cannot be built here: $CM_SKIP."
    log "WARNING: the lab runs cert-manager, KServe and Slurm from STAND-IN charts until it can (docs/lab.md)."
  fi
fi
if want volcano; then
  V=volcano.sh/volcano/pkg/version
  src_project volcano "$VOLCANO_X" "$(mark_of "$VOLCANO_X")" "${VOLCANO_MAINS[@]#*:}" -- build_src "$VOLCANO_X" \
    "-X $V.Version=v$VOLCANO_VERSION -X $V.GitSHA=$VOLCANO_COMMIT -X $V.Built=$EPOCH" "${VOLCANO_MAINS[@]}"
fi
if want kserve; then
  src_project kserve "$KSERVE_X" "$(mark_of "$KSERVE_X")" "${KSERVE_MAINS[@]#*:}" -- build_src "$KSERVE_X" "" "${KSERVE_MAINS[@]}"
fi
if want slurm-operator; then
  src_project slurm-operator "$SLURM_X" "$(mark_of "$SLURM_X")" "${SLURM_MAINS[@]#*:}" -- build_src "$SLURM_X" "" "${SLURM_MAINS[@]}"
fi
if want gpu-operator; then
  if [ ! -d "$GPU_OPERATOR_HOME/state-driver" ] || [ ! -d "$GPU_OPERATOR_HOME/manifests/state-driver" ]; then
    rm -f "$CTRL_BIN/.$GPU_X"
  fi
  src_project gpu-operator "$GPU_X" "$(mark_of "$GPU_X")" "${GPU_OPERATOR_MAINS[@]#*:}" -- build_gpu_operator
fi

log "binaries in $BIN:"
ls -l "$BIN" >&2
if [ -d "$CTRL_BIN" ]; then log "controllers in $CTRL_BIN:"; ls -l "$CTRL_BIN" >&2; fi
