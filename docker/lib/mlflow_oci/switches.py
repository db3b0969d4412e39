"""The runtime's on/off settings: on unless set to false, 0, no or off (any case)."""
import os

OFF = ("false", "0", "no", "off")


def on(name: str) -> bool:
    return os.environ.get(name, "true").lower() not in OFF
