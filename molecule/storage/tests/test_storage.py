"""The storage role on loop block devices: the data volume made and mounted, the devices holding data left
alone, storage_force taking a device only outside check mode."""

import os

import testinfra.utils.ansible_runner

testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(
    os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts("all")


def blkid(host, device, tag):
    return host.check_output(f"blkid --probe --match-tag {tag} --output value {device}")


def fstab_entry(host, mount_point):
    for line in host.file("/etc/fstab").content_string.splitlines():
        fields = line.split()
        if len(fields) >= 4 and not line.startswith("#") and fields[1] == mount_point:
            return fields
    return None


def test_data_volume_is_xfs_mounted_at_data(host):
    assert blkid(host, "/dev/xvdb", "TYPE") == "xfs"
    mount = host.mount_point("/data")
    assert mount.exists
    assert mount.filesystem == "xfs"
    assert {"noatime", "nodev", "nosuid", "noexec"} <= set(mount.options)
    assert host.file("/data").mode == 0o755


def test_fstab_names_the_volume_by_uuid(host):
    fields = fstab_entry(host, "/data")
    assert fields is not None
    assert fields[0] == "UUID=" + blkid(host, "/dev/xvdb", "UUID")
    assert fields[2] == "xfs"
    assert fields[3] == "defaults,noatime,nodev,nosuid,noexec"


def test_data_volume_is_writable(host):
    with host.sudo():
        host.check_output("echo probe > /data/.probe && cat /data/.probe && rm /data/.probe")


def test_refused_ext4_device_keeps_its_data(host):
    assert blkid(host, "/dev/xvdc", "TYPE") == "ext4"
    assert fstab_entry(host, "/srv/used") is None
    with host.sudo():
        out = host.check_output("mkdir -p /mnt/check && mount -o ro /dev/xvdc /mnt/check && "
                                "cat /mnt/check/precious.txt; umount /mnt/check")
    assert out == "keep me"


def test_refused_pv_stays_in_its_volume_group(host):
    with host.sudo():
        assert host.check_output("pvs --noheadings --options vg_name /dev/xvdd").strip() == "vg_other"
    assert fstab_entry(host, "/srv/pv") is None


def test_forced_device_was_reformatted_and_mounted(host):
    assert blkid(host, "/dev/xvde", "TYPE") == "xfs"
    assert host.mount_point("/srv/forced").filesystem == "xfs"
    assert fstab_entry(host, "/srv/forced")[0] == "UUID=" + blkid(host, "/dev/xvde", "UUID")
