"""Every exception the rig raises, in one place.

All derive from SafebenchError, so a caller (the `safebench` command) catches the base to turn any
rig failure into one line. Each message says what went wrong in plain words.
"""


class SafebenchError(Exception):
    """A rig operation failed; the message says why."""


class UsageError(SafebenchError):
    """The command line asks for something that cannot be done as given."""


class BenchError(SafebenchError):
    """The bench could not be brought up, or is not up."""


class UnreadableFileError(SafebenchError):
    """A file the rig reads (a CA, the device registry, the simulated bench's state, a card image) is
    missing, unreadable or not in its format; the message names it and says what to do."""


class PortBusyError(SafebenchError):
    """A board's serial port is held by another safebench command."""


class BenchFileError(SafebenchError):
    """The bench file is missing or wrong, or names a board that cannot be found."""


class BoardError(SafebenchError):
    """A board could not be found, reset, or did not come back."""


class DeployError(SafebenchError):
    """The firmware could not be built or copied."""


class FlashError(SafebenchError):
    """The board could not be flashed; the message says what to do about it."""


class DeviceError(SafebenchError):
    """The board could not be reached or did not answer as the protocol says."""


class RpcError(SafebenchError):
    """The firmware answered a request with a JSON-RPC error."""

    def __init__(self, method, error):
        self.method = method
        self.code = error.get("code")
        self.data = error.get("data") or {}
        super().__init__(f"{method}: {error.get('message')} (error {self.code})")


class NetworkError(RpcError):
    """The board's TCP connection failed; the firmware's message names the peer and what happened.
    Device.call raises the subclass of the error's code (rpc_codes E_NETWORK, E_CONNECTION_REFUSED, ...)."""


class ConnectionRefused(NetworkError):
    """The peer refused the board's connection."""


class ConnectionReset(NetworkError):
    """The peer reset the board's connection."""


class HostNotFound(NetworkError):
    """The host name the board was given does not resolve."""


class NetworkTimeout(NetworkError):
    """The peer did not connect, answer or take data within the request's timeout."""


class SimReplaced(RpcError):
    """The board refused: the SIM in it is not the one it is bound to (docs/binding.md); `data` names both."""


class BindingError(RpcError):
    """The board's binding record cannot be trusted, or the board refused to be bound again."""


class VerificationError(SafebenchError):
    """A signature or certificate did not check out."""


class UntrustedCertificateError(VerificationError):
    """A certificate that does not chain to the CA it was checked against."""


class ReadingError(SafebenchError):
    """A signed reading is not a well-formed, correctly signed COSE_Sign1 SenML pack; `verdict` is its
    verdict's code (readings.MALFORMED, BAD_SIGNATURE, ...)."""

    def __init__(self, message, verdict="malformed"):
        super().__init__(message)
        self.verdict = verdict


class ProvisionError(SafebenchError, ValueError):
    """A card cannot be personalised as asked (unknown profile, no certificate file, ...)."""


class NotDeliveredError(SafebenchError):
    """Readings were taken, but wait in the board's outbox: the broker has not acknowledged them."""


class BrokerError(SafebenchError):
    """The MQTT broker could not be started, or is not installed."""


class TlsServerError(SafebenchError, OSError):
    """A host TLS server could not be started or did not report in time."""


class DatabaseError(SafebenchError):
    """The rig's database (SQLite file or PostgreSQL server) could not be opened or refused a statement."""


class DashboardError(SafebenchError):
    """The demonstrator page's server could not listen (its port is taken, say)."""


class ActionError(SafebenchError):
    """A demonstrator could not take a page's action (no such reading or board, a fault control that failed)."""


class HsmError(SafebenchError):
    """The HSM (a PKCS#11 module and token) could not be opened, or refused an operation."""


class EnrolmentError(SafebenchError):
    """An EST enrolment was refused or failed (by the server, or on the way to it)."""


class StoreError(RpcError):
    """The board's enrolled identity in flash does not check with its SIM: changed, damaged, or another SIM's."""


class BoardEnrolmentError(RpcError, EnrolmentError):
    """The board's enrolment was refused by the EST server, or its answer was not what EST allows."""


class LabError(SafebenchError):
    """The lab (labgrid: its coordinator, an exporter, a place) refused or could not be reached."""
