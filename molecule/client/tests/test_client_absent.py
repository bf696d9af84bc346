"""client_state: absent removes exactly what the role added."""


def test_pip_conf_keeps_only_the_operators_settings(host):
    content = host.file("/etc/pip.conf").content_string
    assert "timeout = 60" in content
    assert "index-url" not in content and "trusted-host" not in content and "cert" not in content


def test_uv_keeps_only_the_operators_settings(host):
    assert host.file("/etc/uv/uv.toml").content_string == 'cache-dir = "/var/tmp/uv-cache"\n\n[pip]\nstrict = true\n'


def test_user_files_that_held_only_the_roles_settings_are_gone(host):
    assert not host.file("/home/alice/.config/uv/uv.toml").exists
    assert "index-url" not in host.file("/home/alice/.config/pip/pip.conf").content_string


def test_ca_certificate_left_the_system_store(host):
    assert not host.file("/usr/local/share/ca-certificates/localpypi-mirror.crt").exists
    marker = host.check_output("sed -n 2p /var/tmp/test-ca.pem")
    assert marker not in host.file("/etc/ssl/certs/ca-certificates.crt").content_string
