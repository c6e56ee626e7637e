"""The extractor the road test walks docs/install.md with: which blocks, which commands, and
that the stand-ins touch only what they list."""

from __future__ import annotations

from pathlib import Path

from tests.deploy.road import Box, commands, road

PAGE = """
```sh
git clone x   # prose: not walked
```

```sh road
sudo tee /etc/mosquitto/conf.d/a.conf > /dev/null <<'EOF'
listener 1883 127.0.0.1
EOF
sudo openssl req -x509 \\
    -out /etc/mosquitto/certs/b.pem
lockgate ctl status    # a comment stays
```
"""


def test_only_road_blocks_and_whole_commands() -> None:
    assert road(PAGE) == [
        "sudo tee /etc/mosquitto/conf.d/a.conf > /dev/null <<'EOF'\nlistener 1883 127.0.0.1\nEOF",
        "sudo openssl req -x509 \\\n    -out /etc/mosquitto/certs/b.pem",
        "lockgate ctl status    # a comment stays",
    ]
    assert commands("\n\necho a\n\n") == ["echo a"]


def test_box_moves_the_listed_system_paths_and_ports_only() -> None:
    box = Box(Path("/tmp/x"), broker_port=41883, tls_port=48883, values={"ag_123": "g-1"})
    text = box.text(
        "cat /etc/lockgate/credentials/k /etc/passwd > /dev/null; ls /dev/serial/by-id/;\n"
        "x=18830 port = 1883 8883 acme-hq-1.local grant_id=ag_123 ~/.config/lockgate/a"
    )
    assert text == (
        "cat /tmp/x/etc/lockgate/credentials/k /etc/passwd > /dev/null; "
        "ls /tmp/x/dev/serial/by-id/;\n"
        "x=18830 port = 41883 48883 localhost grant_id=g-1 ~/.config/lockgate/a"
    )


def test_the_install_page_has_a_road() -> None:
    steps = road()
    assert any(c.startswith("sudo scripts/install.sh --gateway-id ") for c in steps)
    assert any(c.startswith("sudo lockgate commission ") for c in steps)
    assert any(c.startswith("lockgate ctl commission ") for c in steps)
