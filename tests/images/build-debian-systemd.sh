#!/usr/bin/env bash
# Build the systemd test image for node roles (molecule) with debootstrap + `docker import`.
# No container registry is involved: the root filesystem comes from the Debian mirror apt already
# uses on this machine (read from /etc/apt/sources.list*), the image is imported locally.
#
#   tests/images/build-debian-systemd.sh [IMAGE]      # default gpufleet/debian-systemd:bookworm
#
# Cached: the image carries the label gpufleet.build=<hash of this script>, so an unchanged script
# reuses the image and an edited one rebuilds it. FORCE=1 rebuilds. The debootstrap tree is cached under
# $GPUFLEET_IMAGE_CACHE (default ~/.cache/gpufleet/images) so a rebuild after `docker rmi` is quick.
set -euo pipefail

SUITE="${SUITE:-bookworm}"
HASH="$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-12)"
IMAGE="${1:-gpufleet/debian-systemd:${SUITE}}"
CACHE="${GPUFLEET_IMAGE_CACHE:-${HOME}/.cache/gpufleet/images}"
ROOTFS="${CACHE}/${SUITE}-${HASH}.tar"
# systemd for the init, python3 for Ansible, kmod for modprobe.d semantics, procps for ps in diagnostics,
# initramfs-tools to build and read a real initramfs (the nouveau blacklist in it; no kernel is installed)
PACKAGES="systemd,systemd-sysv,dbus,python3,python3-apt,kmod,procps,ca-certificates,initramfs-tools"

if [[ "${FORCE:-0}" != 1 ]] && \
   [[ "$(docker image inspect -f '{{ index .Config.Labels "gpufleet.build" }}' "$IMAGE" 2>/dev/null)" == "$HASH" ]]; then
  echo "image $IMAGE exists (cached)"
  exit 0
fi

mirror() {
  # First Debian URI apt uses here (deb822 .sources or one-line .list), without a trailing slash.
  local uri
  uri="$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null \
        | grep -v security | sed -E 's/^URIs:[[:space:]]*//; s/^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?//' \
        | awk '{print $1}' | head -n1)"
  echo "${MIRROR:-${uri%/}}"
}

if [[ ! -s "$ROOTFS" ]]; then
  command -v debootstrap >/dev/null || { echo "debootstrap is not installed (make docker-up installs it)" >&2; exit 1; }
  url="$(mirror)"
  [[ -n "$url" ]] || { echo "no Debian mirror found in /etc/apt/sources.list*; set MIRROR=" >&2; exit 1; }
  mkdir -p "$CACHE"
  work="$(mktemp -d "${CACHE}/rootfs.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  echo "debootstrap $SUITE from $url"
  debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$work/root" "$url"
  # Container hygiene: no getty, no udev-triggered units, a machine-id per container, no apt caches.
  chroot "$work/root" systemctl mask getty@.service serial-getty@.service systemd-udevd.service \
    systemd-udevd-kernel.socket systemd-udevd-control.socket systemd-remount-fs.service \
    systemd-logind.service sys-kernel-debug.mount sys-kernel-tracing.mount >/dev/null
  chroot "$work/root" systemctl set-default multi-user.target >/dev/null
  : > "$work/root/etc/machine-id"
  rm -rf "$work/root/var/lib/apt/lists/"* "$work/root/var/cache/apt/"*.bin "$work/root/var/cache/apt/archives/"*.deb
  tar -C "$work/root" --numeric-owner -cf "$ROOTFS.tmp" .
  mv "$ROOTFS.tmp" "$ROOTFS"
fi

docker import \
  --change 'ENV container=docker' \
  --change "LABEL gpufleet.build=${HASH}" \
  --change 'CMD ["/lib/systemd/systemd"]' \
  --message "gpufleet test image (debootstrap ${SUITE}, $(basename "$0") ${HASH})" \
  "$ROOTFS" "$IMAGE"
echo "built $IMAGE"
