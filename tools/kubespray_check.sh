#!/usr/bin/env bash
# make kubespray-check: install the Kubespray collection at the pinned version into .build/collections
# (from KUBESPRAY_SRC, a local checkout, or from git when GitHub answers), then run
# `ansible-playbook --syntax-check` and `--list-tasks` on playbooks/cluster.yml, scale.yml and upgrade.yml
# with an inventory from a sample config. Without Kubespray: "kubespray-check: SKIPPED: <reason>", exit 0.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
COLLECTIONS=${COLLECTIONS:-$PWD/.build/collections}
CONFIG=${KUBESPRAY_CHECK_CONFIG:-inventories/example/config.yml}
SRC=${KUBESPRAY_SRC:-}
URL=https://github.com/kubernetes-sigs/kubespray
TARGET=$COLLECTIONS/ansible_collections/kubernetes_sigs/kubespray
LOG=.build/kubespray-check
PLAYBOOKS=(playbooks/cluster.yml playbooks/scale.yml playbooks/upgrade.yml playbooks/remove_node.yml)
# Kubespray v2.31.0 galaxy.yml dependencies (the pinned `ansible` package ships them)
DEPS=(ansible.utils community.crypto community.general ansible.netcommon ansible.posix community.docker kubernetes.core)

say() { echo "kubespray-check: $*"; }
skip() { say "SKIPPED: $*"; exit 0; }

mkdir -p "$LOG"
VERSION=$("$BIN/python" -c 'import sys; sys.path.insert(0, "plugins/module_utils"); import versions; print(versions.KUBESPRAY_VERSION)')
# The collection's tree as `ansible-galaxy collection install` lays it out (ansible_collections/<ns>/<name>).
# A plain copy: ansible-galaxy needs the python distlib library for the `manifest` key of Kubespray's
# galaxy.yml, and would try Galaxy for the dependencies (the pinned `ansible` package already has them).
copy_tree() {
  rm -rf "$TARGET"
  mkdir -p "$TARGET"
  tar -C "$1" --exclude=.git -cf - . | tar -C "$TARGET" -xf -
}
installed_version() { sed -n 's/^version: *//p' "$TARGET/galaxy.yml" 2>/dev/null | tr -d "\"' " || true; }

if [[ -n "$SRC" ]]; then
  [[ -f "$SRC/galaxy.yml" && -d "$SRC/playbooks" ]] || { say "ERROR: KUBESPRAY_SRC=$SRC is not a Kubespray checkout (no galaxy.yml, playbooks/)"; exit 2; }
  src_version=$(sed -n 's/^version: *//p' "$SRC/galaxy.yml" | tr -d "\"' ")
  [[ "v$src_version" == "$VERSION" ]] || say "WARNING: KUBESPRAY_SRC is Kubespray $src_version, the pinned version is $VERSION (git -C $SRC checkout $VERSION)"
  say "installing Kubespray $src_version from $SRC into $TARGET"
  copy_tree "$SRC"
elif [[ "v$(installed_version)" == "$VERSION" ]]; then
  say "using Kubespray $(installed_version) already installed in $TARGET"
else
  command -v git >/dev/null || skip "no KUBESPRAY_SRC, Kubespray $VERSION not in $COLLECTIONS, and git is not installed"
  if ! timeout 15 git ls-remote --exit-code --tags "$URL" "refs/tags/$VERSION" >/dev/null 2>&1; then
    skip "no KUBESPRAY_SRC, Kubespray $VERSION not in $COLLECTIONS, and $URL is not reachable (15 s); run with KUBESPRAY_SRC=<checkout of $VERSION>"
  fi
  say "installing Kubespray $VERSION from $URL into $TARGET"
  clone=$(mktemp -d)
  trap 'rm -rf "$clone"' EXIT
  git clone -q --depth 1 --branch "$VERSION" "$URL.git" "$clone/kubespray"
  copy_tree "$clone/kubespray"
fi

missing=()
listing=$("$BIN/ansible-galaxy" collection list 2>/dev/null || true)
for dep in "${DEPS[@]}"; do grep -q "^$dep " <<<"$listing" || missing+=("$dep"); done
[[ ${#missing[@]} -eq 0 ]] || say "WARNING: Kubespray's dependencies missing: ${missing[*]}"

status=0
for playbook in "${PLAYBOOKS[@]}"; do
  name=$(basename "$playbook" .yml)
  for mode in syntax-check list-tasks; do
    out="$LOG/$name.$mode.txt"
    if "$BIN/ansible-playbook" -i "$CONFIG" "$playbook" "--$mode" >"$out" 2>&1; then
      if [[ $mode == list-tasks ]]; then
        say "$playbook --$mode: ok ($(grep -c '^  play #' "$out") plays, $(grep -cE '^      [^ ].*TAGS:' "$out") tasks; $out)"
      else
        say "$playbook --$mode: ok"
      fi
    else
      status=1
      say "$playbook --$mode: FAILED ($out):"
      tail -n 20 "$out"
    fi
  done
done
if [[ $status -eq 0 ]]; then say "PASSED with Kubespray $(installed_version) ($TARGET), inventory $CONFIG"; else say "FAILED"; fi
exit $status
