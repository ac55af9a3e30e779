"""Enrolment over EST (RFC 7030, docs/enrolment.md): the server, its CA key in an HSM, and a host client."""

from .client import EstClient
from .server import EstServer

__all__ = ["EstClient", "EstServer"]
