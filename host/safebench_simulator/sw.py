"""ISO 7816-4 / IoT SAFE status words, as named constants.

Shared by the UICC transport and the applet so both speak the same numbers.
"""

OK = 0x9000
MORE_DATA_AVAILABLE = 0x6100  # | number of bytes waiting for GET RESPONSE (00 = 256)
MORE_DATA_REPEAT = 0x6300  # GET DATA object list: data follows on the repeated command with P2 = 01
WRONG_LENGTH = 0x6700
LOGICAL_CHANNEL_NOT_SUPPORTED = 0x6881
SECURITY_STATUS_NOT_SATISFIED = 0x6982
CONDITIONS_NOT_SATISFIED = 0x6985
INCORRECT_DATA = 0x6A80
NO_FREE_CHANNEL = 0x6A81  # "function not supported": no logical channel left to open
NOT_FOUND = 0x6A82
INCORRECT_P1P2 = 0x6A86
WRONG_OFFSET = 0x6B00  # offset at or beyond end of file
WRONG_LE = 0x6C00  # | exact number of bytes available
INS_NOT_SUPPORTED = 0x6D00
SIGNATURE_MISMATCH = 0x6D01  # Verify Signature Update: the signature does not verify
CLA_NOT_SUPPORTED = 0x6E00
UNKNOWN_ERROR = 0x6F00  # no precise diagnosis (the simulator's own bugs end here, logged)


# Status words that may come with response data.
WITH_DATA = (OK, MORE_DATA_REPEAT)


def to_bytes(sw: int) -> bytes:
    """Two-byte big-endian SW1 SW2."""
    return sw.to_bytes(2, "big")
