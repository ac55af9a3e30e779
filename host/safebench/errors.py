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


class VerificationError(SafebenchError):
    """A signature or certificate did not check out."""


class ReadingError(SafebenchError):
    """A signed reading is not a well-formed, correctly signed COSE_Sign1 SenML pack."""


class ProvisionError(SafebenchError, ValueError):
    """A card cannot be personalised as asked (unknown profile, no certificate file, ...)."""


class TlsServerError(SafebenchError, OSError):
    """A host TLS server could not be started or did not report in time."""
