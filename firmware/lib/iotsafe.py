# GSMA IoT SAFE (IoT.05) applet client: read files and sign with keys that never leave the SIM.
#
# Objects are addressed by ID (bytes of any length). Signature sessions are always closed, also
# after an error: a session left open blocks the next Init with 6A86 until the card is reset.
from apdu import CardError, LogicalChannel
from micropython import const

AID = b"\xa0\x00\x00\x05\x59\x00\x10"  # the GSMA IoT SAFE AID

_INS_GET_DATA = const(0xCB)
_INS_READ_FILE = const(0xB0)
_INS_GET_RANDOM = const(0x84)
_INS_SIGN_INIT = const(0x2A)
_INS_SIGN_UPDATE = const(0x2B)
_SESSION = const(1)
_MODE_PAD_AND_SIGN = const(3)
_HASH_SHA256 = const(1)
_SIG_ECDSA = const(4)
_TAG_FILE_ID = const(0x83)
_TAG_PRIVATE_KEY_ID = const(0x84)
_TAG_FILE_SIZE = const(0x20)
_TAG_SIGNATURE = const(0x33)
_CHUNK = const(240)  # READ FILE bytes per APDU: fits every modem's +CSIM buffer
_SIGN_TIMEOUT_MS = const(20000)  # on-card ECDSA takes seconds on real SIMs


def tlv(tag, value):
    return bytes((tag, len(value))) + value


def find_tlv(data, tag):
    """The value of the first `tag` in a flat TLV run, or None. Tolerates the 2-byte length of tag 33."""
    i, n = 0, len(data)
    while i + 2 <= n:
        t, length = data[i], data[i + 1]
        i += 2
        if t == _TAG_SIGNATURE and length == 0 and i < n:  # `33 00 40`: 2-byte length form
            length = data[i]
            i += 1
        if t == tag:
            return data[i:i + length]
        i += length
    return None


class IoTSafe:
    def __init__(self, csim, aid=AID):
        self.channel = LogicalChannel(csim)
        self.aid = aid

    def open(self):
        self.channel.open(self.aid)

    def close(self):
        self.channel.close()

    def file_size(self, file_id):
        info = self.channel.send(_INS_GET_DATA, 0xC3, 0, tlv(_TAG_FILE_ID, file_id), 0, "GET DATA file info")
        size = find_tlv(info, _TAG_FILE_SIZE)
        if size is None or len(size) != 2:
            raise CardError(0x6F00, "file info without a size")
        return (size[0] << 8) | size[1]

    def read_file(self, file_id):
        size = self.file_size(file_id)
        out = bytearray(size)
        ref = tlv(_TAG_FILE_ID, file_id)
        offset = 0
        while offset < size:
            want = min(_CHUNK, size - offset)
            chunk = self.channel.send(_INS_READ_FILE, offset >> 8, offset & 0xFF, ref, want, "READ FILE")
            if not chunk:
                raise CardError(0x6F00, "READ FILE returned no data")
            chunk = chunk[:size - offset]
            out[offset:offset + len(chunk)] = chunk
            offset += len(chunk)
        return bytes(out)

    def random(self, n):
        return self.channel.send(_INS_GET_RANDOM, 0, 0, None, n, "GET RANDOM")

    def sign_hash(self, key_id, digest):
        """ECDSA P-256 over a SHA-256 digest computed by the caller (pad-and-sign mode); raw r||s."""
        init = (tlv(_TAG_PRIVATE_KEY_ID, key_id) + tlv(0xA1, bytes((_MODE_PAD_AND_SIGN,)))
                + b"\x91\x02\x00" + bytes((_HASH_SHA256,)) + tlv(0x92, bytes((_SIG_ECDSA,))))
        self.channel.send(_INS_SIGN_INIT, 0x00, _SESSION, init, None, "Compute Signature Init")
        try:
            resp = self.channel.send(_INS_SIGN_UPDATE, 0x80, _SESSION, tlv(0x9E, digest), 0,
                                     "Compute Signature Update", _SIGN_TIMEOUT_MS)
        finally:
            self._close_session()
        sig = find_tlv(resp, _TAG_SIGNATURE)
        if sig is None or len(sig) != 64:
            raise CardError(0x6F00, "signature is not raw r||s of 64 bytes")
        return sig

    def _close_session(self):
        try:
            self.channel.send(_INS_SIGN_INIT, 0x01, _SESSION, None, None, "close signature session")
        except CardError:
            pass  # already closed by the card; nothing is left open
