#!/usr/bin/env bash
# Make a Docker engine and the molecule base image available on this machine, whatever it starts with:
# the engine from the OS packages (started by hand when no systemd runs it), and a Debian 12 systemd
# image built with debootstrap (its default mirror) and `docker import`, cached by tag.
set -euo pipefail
image=${MOLECULE_DEBIAN_IMAGE:-localpypi/debian12-systemd:1}

if ! command -v dockerd >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap >/dev/null
fi
if ! docker info >/dev/null 2>&1; then
    if command -v systemctl >/dev/null 2>&1 && [ "$(cat /proc/1/comm)" = systemd ]; then
        systemctl start docker
    else
        nohup dockerd >/var/log/localpypi-dockerd.log 2>&1 &
    fi
    for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null
fi
if ! docker image inspect "$image" >/dev/null 2>&1; then
    rootfs=$(mktemp -d)
    debootstrap --variant=minbase \
        --include=systemd,systemd-sysv,dbus,python3,python3-apt,sudo,ca-certificates,iproute2,procps \
        bookworm "$rootfs" >/dev/null
    # The host's CA bundle: outbound TLS from here may pass an intercepting proxy the image must trust.
    cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
    rm -f "$rootfs"/etc/machine-id && touch "$rootfs"/etc/machine-id
    tar -C "$rootfs" -c . | docker import -c 'CMD ["/lib/systemd/systemd"]' - "$image" >/dev/null
    rm -rf "$rootfs"
fi
echo "docker ready; base image $image"
