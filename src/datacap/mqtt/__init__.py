"""Home Assistant over MQTT: discovery configs and states from the one status model (issue #15)."""
