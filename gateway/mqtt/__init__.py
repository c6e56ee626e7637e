"""The MQTT management plane: commands, retained state, access events, Home Assistant
discovery, on aiomqtt. Layers, bottom up: ``topics`` (names) → ``payloads`` (wire models and
error codes) → ``auth`` (operator signatures, replay refusal) → ``state`` / ``publisher`` /
``discovery`` / ``commands`` (what is said) → ``connection`` (client construction, reconnect
policy) → ``plane`` (the lifetime). See docs/mqtt.md.
"""
