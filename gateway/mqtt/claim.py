"""Is this gateway's name free on the broker? Checked before the gateway takes it.

Two gateways configured with the same ``gateway_id`` (every Raspberry Pi is ``raspberrypi``
until someone chooses) would share topics, client id and ACL user: each connection would throw
the other off the broker and their retained state would overwrite each other's. So before the
gateway connects under its own client id, a throw-away client (another id, the same login)
reads the retained gateway state document: when it is signed by another gateway identity
(:mod:`gateway.mqtt.identity`), the name is taken and the gateway does not take it.

Reading a retained message without waiting an arbitrary time: the probe subscribes to the
state topic, then to a topic of its own, and publishes there. The broker handles one client's
packets in order, so the probe's own message arrives after any retained state document.
"""

from __future__ import annotations

import asyncio
import json
import secrets

import aiomqtt

from gateway.mqtt.connection import MqttError, payload_bytes, reraise_lost_cancel
from gateway.mqtt.topics import Topics

PROBE_TIMEOUT_S = 10.0


class NameTakenError(MqttError):
    """Another gateway identity holds this ``gateway_id`` on the broker."""

    wait_longest = True
    """The reconnect policy waits its maximum: this does not go away by retrying soon."""

    def __init__(self, gateway_id: str, holder: str) -> None:
        super().__init__(
            f"gateway_id {gateway_id!r} is already used on this broker by another gateway "
            f"(identity {holder[:12]}...): choose another gateway_id, or, if that gateway was "
            f"replaced, clear its retained state (mosquitto_pub -r -n -t <base>/{gateway_id}/state)"
        )
        self.holder = holder


def identity_in(body: bytes) -> str | None:
    """The ``identity`` a retained gateway state document names, if any."""
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    identity = doc.get("identity") if isinstance(doc, dict) else None
    return identity if isinstance(identity, str) and identity else None


async def holder_of_name(
    client: aiomqtt.Client, topics: Topics, timeout_s: float = PROBE_TIMEOUT_S
) -> str | None:
    """The identity that signed the retained gateway state, or ``None`` when there is none.

    ``client`` is connected (with a client id of its own) and is used only for this.
    """
    probe = f"{topics.root}/claim/{secrets.token_hex(8)}"
    await client.subscribe(topics.state, qos=1)
    await client.subscribe(probe, qos=1)
    await client.publish(probe, b"probe", qos=1)
    reraise_lost_cancel()
    holder: str | None = None
    async with asyncio.timeout(timeout_s):
        async for message in client.messages:
            topic = str(message.topic)
            if topic == probe:
                break
            if topic == topics.state:
                holder = identity_in(payload_bytes(message.payload))
    return holder
