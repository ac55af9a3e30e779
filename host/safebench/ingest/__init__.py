"""The verifying ingest: readings from the MQTT broker, each checked on its own and stored with its verdict
in the rig's database (docs/ingest.md)."""

from .worker import SHARE_GROUP, Ingest

__all__ = ["Ingest", "SHARE_GROUP"]
