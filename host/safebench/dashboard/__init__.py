"""The live demonstrator page (docs/dashboard.md): `Dashboard` serves it from the ingest's database;
`demonstrator` brings up boards, broker and ingest behind it."""

from ..errors import ActionError
from .server import Dashboard

__all__ = ["ActionError", "Dashboard"]
