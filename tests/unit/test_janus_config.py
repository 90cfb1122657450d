"""Janus's configuration as the hotline generates it from its settings."""

from __future__ import annotations

from pathlib import Path

from callcenter.config import MediaSettings
from callcenter.media.janus_config import JanusConfig, janus_files, render
from callcenter.media.process import embedded_config


def test_render_writes_libconfig_groups_with_quoted_strings() -> None:
    text = render({"general": {"name": 'a "b"', "on": True, "port": 8088, "empty": ""}})
    assert 'general: {\n\tname = "a \\"b\\""\n\ton = true\n\tport = 8088\n}' in text
    assert "empty" not in text  # an empty setting is left to Janus's default


def test_the_configuration_requires_tokens_and_keys_and_loads_only_what_is_used() -> None:
    cfg = JanusConfig(http_port=1, ws_port=2, admin_port=3, admin_secret="s3", admin_key="k3")
    files = janus_files(cfg, Path("/tmp/conf"))
    core = files["janus.jcfg"]
    assert "token_auth = true" in core and 'admin_secret = "s3"' in core
    assert 'admin_key = "k3"' in files["janus.plugin.videoroom.jcfg"]
    assert 'admin_key = "k3"' in files["janus.plugin.audiobridge.jcfg"]
    for wanted in ("libjanus_videoroom.so", "libjanus_sip.so", "libjanus_http.so"):
        assert wanted not in core.split("disable")[1]
    assert 'ip = "127.0.0.1"' in files["janus.transport.http.jcfg"]
    assert 'admin_ip = "127.0.0.1"' in files["janus.transport.http.jcfg"]
    assert 'rtp_port_range = "40001-50000"' in files["janus.plugin.sip.jcfg"]


def test_embedded_configuration_draws_fresh_secrets_and_free_ports() -> None:
    one, two = embedded_config(MediaSettings()), embedded_config(MediaSettings())
    assert one.admin_secret != two.admin_secret and len(one.admin_secret) >= 24
    assert one.admin_key != one.admin_secret
    assert len({one.http_port, one.ws_port, one.admin_port}) == 3
    fixed = embedded_config(MediaSettings(http_port=8088, admin_secret="given"))
    assert fixed.http_port == 8088 and fixed.admin_secret == "given"
