#!/usr/bin/env bash
# Loop block devices for the storage scenario, made on the host before its container starts (device nodes
# made later do not appear inside a container). Sparse 512 MiB files under /var/tmp; needs root.
#   eval "$(molecule/storage/loop-devices.sh up)"   fresh devices; prints LOCALPYPI_LOOP_<ROLE>=/dev/loopN
#   molecule/storage/loop-devices.sh down          detach them and delete the files
set -euo pipefail
state_dir=/var/tmp/localpypi-storage-loops
roles="EMPTY USED PV FORCED"

down() {
    for role in $roles; do
        image="$state_dir/$role.img"
        [ -e "$image" ] || continue
        for device in $(losetup --noheadings --output NAME --associated "$image"); do
            losetup --detach "$device"
        done
        rm -f "$image"
    done
}

case "${1:-}" in
    up)
        down
        mkdir -p "$state_dir"
        for role in $roles; do
            truncate --size 512M "$state_dir/$role.img"
            echo "export LOCALPYPI_LOOP_$role=$(losetup --find --show "$state_dir/$role.img")"
        done
        ;;
    down) down ;;
    *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
