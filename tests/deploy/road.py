"""docs/install.md's road, as commands a test can walk.

The road is every fenced block whose info string is ``sh road``, in the order of the page;
other ``sh`` blocks (examples, alternatives) are prose. Each block splits into commands: a
line, its ``\\`` continuation lines, and the body of a quoted here-document it opens.

:class:`Box` holds what the test has to stand in for, and nothing else: the system paths the
commands name (moved under a temporary root), the ports, the box's network name, and the
values an installer reads off a label or a screen. ``Box.text`` applies them to a command or
a file exactly as listed, so the command that runs is the one in the doc with those values
changed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
INSTALL_MD = REPO / "docs" / "install.md"

_FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```", re.M | re.S)
_HEREDOC = re.compile(r"<<'(\w+)'")

SYSTEM_PATHS = (
    "/etc/lockgate",
    "/etc/mosquitto",
    "/etc/systemd/system",
    "/run/lockgate",
    "/var/lib/lockgate",
    "/dev/serial",
)
"""Box-only paths the road names; each is moved under the test's root, the rest of the path
kept (``/etc/lockgate/credentials/x`` -> ``<root>/etc/lockgate/credentials/x``)."""


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """``(info string, body)`` of every fenced block, in order."""
    return [(m.group(1).strip(), m.group(2)) for m in _FENCE.finditer(text)]


def road_blocks(text: str) -> list[str]:
    return [body for info, body in fenced_blocks(text) if info == "sh road"]


def toml_block(text: str, first_line: str) -> str:
    """The one ``toml`` block of the road's config step that starts with ``first_line``."""
    found = [
        body for info, body in fenced_blocks(text) if info == "toml" and body.startswith(first_line)
    ]
    if len(found) != 1:
        raise AssertionError(f"expected one toml block starting {first_line!r}, got {len(found)}")
    return found[0]


def commands(block: str) -> list[str]:
    """The commands of one block: continuation lines and here-document bodies included."""
    lines = block.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        command = [lines[i]]
        i += 1
        if not command[0].strip():
            continue
        while command[-1].endswith("\\"):
            command.append(lines[i])
            i += 1
        heredoc = _HEREDOC.search("\n".join(command))
        if heredoc is not None:
            while lines[i] != heredoc.group(1):
                command.append(lines[i])
                i += 1
            command.append(lines[i])
            i += 1
        out.append("\n".join(command))
    return out


def road(text: str | None = None) -> list[str]:
    """Every command of the road, in order."""
    text = INSTALL_MD.read_text() if text is None else text
    return [c for block in road_blocks(text) for c in commands(block)]


@dataclass
class Box:
    """The stand-ins for what only a real box has."""

    root: Path
    """Where the box's system paths live."""
    broker_port: int
    """Stands in for 1883 (the gateway's loopback listener)."""
    tls_port: int
    """Stands in for 8883 (the operators' TLS listener)."""
    values: dict[str, str] = field(default_factory=dict)
    """Placeholders of the doc -> what this run has (an id from a label, a grant's id)."""

    def path(self, system_path: str) -> Path:
        """Where ``system_path`` (one under :data:`SYSTEM_PATHS`) is in this run."""
        assert system_path.startswith(SYSTEM_PATHS), system_path
        return self.root / system_path.lstrip("/")

    def text(self, text: str) -> str:
        for system_path in SYSTEM_PATHS:
            text = re.sub(
                rf"(?<![\w.~/-]){re.escape(system_path)}(?=[/\s'\":]|$)",
                str(self.path(system_path)),
                text,
                flags=re.M,
            )
        text = re.sub(r"\b1883\b", str(self.broker_port), text)
        text = re.sub(r"\b8883\b", str(self.tls_port), text)
        text = text.replace("acme-hq-1.local", "localhost")
        for placeholder, value in self.values.items():
            text = text.replace(placeholder, value)
        return text
