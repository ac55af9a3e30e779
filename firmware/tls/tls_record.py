# TLS 1.3 record layer (RFC 8446 section 5) over any stream with read/readinto and write.
#
# One receive buffer and one send buffer, allocated once: with record_size_limit / max_fragment_length
# agreed (RFC 8449, RFC 6066) a protected record is at most 2 KB, so the receive buffer stays small.
# A server that agrees to neither may send full 16 KB records; the receive buffer then grows once.
# Records are decrypted in place; the plaintext handed out is a memoryview into the receive buffer,
# valid until the next read.
from aead import AuthError, wipe_buffer
from micropython import const
from rpc_codes import E_TLS

CT_CCS = const(20)
CT_ALERT = const(21)
CT_HANDSHAKE = const(22)
CT_APPDATA = const(23)
MAX_PLAINTEXT = const(16384)
RECORD_LIMIT = const(2048)  # plaintext bytes per record we ask the server to keep to
_TAG = const(16)

CLOSE_NOTIFY = const(0)
UNEXPECTED_MESSAGE = const(10)
BAD_RECORD_MAC = const(20)
RECORD_OVERFLOW = const(22)
HANDSHAKE_FAILURE = const(40)
BAD_CERTIFICATE = const(42)
UNSUPPORTED_CERTIFICATE = const(43)
CERTIFICATE_EXPIRED = const(45)
CERTIFICATE_UNKNOWN = const(46)
ILLEGAL_PARAMETER = const(47)
UNKNOWN_CA = const(48)
DECODE_ERROR = const(50)
DECRYPT_ERROR = const(51)
PROTOCOL_VERSION = const(70)
INTERNAL_ERROR = const(80)
USER_CANCELED = const(90)
MISSING_EXTENSION = const(109)
UNSUPPORTED_EXTENSION = const(110)

ALERTS = {
    0: "close notify", 10: "unexpected message", 20: "bad record MAC", 22: "record overflow",
    40: "handshake failure", 42: "bad certificate", 43: "unsupported certificate", 44: "certificate revoked",
    45: "certificate expired", 46: "certificate unknown", 47: "illegal parameter", 48: "unknown CA",
    49: "access denied", 50: "decode error", 51: "decrypt error", 70: "protocol version",
    71: "insufficient security", 80: "internal error", 86: "inappropriate fallback", 90: "user canceled",
    109: "missing extension", 110: "unsupported extension", 112: "unrecognized name",
    116: "certificate required", 120: "no application protocol",
}


class TLSError(Exception):
    """A TLS failure. `alert` is the alert number (None when no alert applies), `remote` is True when
    the peer sent it. The message starts with what went wrong in words, e.g. "unknown CA: ...".
    `code` and `data`: how the failure travels in the command protocol.
    """

    code = E_TLS

    def __init__(self, alert, detail=None, remote=False):
        self.alert = alert
        self.remote = remote
        self.data = {"alert": alert, "remote": remote}
        words = ALERTS.get(alert, "alert %s" % alert) if alert is not None else "connection failed"
        if remote:
            msg = "server sent alert: " + words
        else:
            msg = detail if detail else words
        super().__init__(msg)


def buffers(plaintext=RECORD_LIMIT):
    """The receive and send buffers for records of up to `plaintext` bytes. A small board allocates them
    before it loads the TLS client: later, its heap may have the room but not in one piece."""
    return bytearray(5 + plaintext + 1 + _TAG), bytearray(5 + plaintext + 1 + _TAG)


class Records:
    def __init__(self, sock, buffers):
        self.sock = sock
        self._in, self._out = buffers  # from buffers()
        self.send_max = len(self._out) - 5 - 1 - _TAG
        self.limit_agreed = False  # once True, records above the buffer are an error, not a reason to grow
        self.reader = None  # (aead, iv, [sequence number]) once reads are protected
        self.writer = None
        self.records_in = 0
        self.records_out = 0

    # ---- keys ----------------------------------------------------------------------------------

    def set_reader(self, aead, iv):
        self._wipe(self.reader)
        self.reader = (aead, iv, [0])

    def set_writer(self, aead, iv):
        self._wipe(self.writer)
        self.writer = (aead, iv, [0])

    @staticmethod
    def _wipe(state):
        if state is not None:
            state[0].wipe()
            wipe_buffer(state[1])

    def wipe(self):
        self._wipe(self.reader)
        self._wipe(self.writer)
        self.reader = self.writer = None
        for buf in (self._in, self._out):
            wipe_buffer(buf)

    @staticmethod
    def _nonce(state):
        seq = state[2][0]
        state[2][0] = seq + 1
        return (int.from_bytes(state[1], "big") ^ seq).to_bytes(12, "big")

    # ---- transport -----------------------------------------------------------------------------

    def _fill(self, mv):
        got, n = 0, len(mv)
        readinto = getattr(self.sock, "readinto", None)
        while got < n:
            if readinto is not None:
                k = readinto(mv[got:])
            else:  # a stream with read(n) only
                data = self.sock.read(n - got)
                k = len(data) if data is not None else None
                if k:
                    mv[got:got + k] = data
            if not k:
                raise TLSError(None, "connection closed by the server" if k == 0 else "transport read failed")
            got += k

    def _send(self, data):
        mv = memoryview(data)
        while len(mv):
            k = self.sock.write(mv)
            if k is None:
                continue
            if k <= 0:
                raise TLSError(None, "transport write failed")
            mv = mv[k:]

    # ---- records -------------------------------------------------------------------------------

    def read(self, first=None):
        """(content type, plaintext memoryview) of the next record. `first`: the header's first byte,
        when the caller already read it (non-blocking probe)."""
        buf = self._in
        hdr = memoryview(buf)[:5]
        if first is None:
            self._fill(hdr)
        else:
            buf[0] = first
            self._fill(hdr[1:])
        ctype, length = buf[0], (buf[3] << 8) | buf[4]
        if ctype not in (CT_CCS, CT_ALERT, CT_HANDSHAKE, CT_APPDATA) or buf[1] != 3:
            raise TLSError(UNEXPECTED_MESSAGE, "unexpected message: not a TLS record (type %d)" % ctype)
        if length > MAX_PLAINTEXT + 256:
            raise TLSError(RECORD_OVERFLOW, "record overflow: %d-byte record" % length)
        if length > len(buf) - 5:
            if self.limit_agreed:
                raise TLSError(RECORD_OVERFLOW, "record overflow: %d bytes, more than the agreed limit" % length)
            grown = bytearray(5 + MAX_PLAINTEXT + 256)  # the server ignored our record size limit
            grown[:5] = buf[:5]
            self._in = buf = grown
        mv = memoryview(buf)
        self._fill(mv[5:5 + length])
        self.records_in += 1
        if self.reader is None or ctype == CT_CCS:
            return ctype, mv[5:5 + length]
        if ctype != CT_APPDATA:
            raise TLSError(UNEXPECTED_MESSAGE, "unexpected message: unprotected record after the key exchange")
        aad = bytes(mv[:5])
        try:
            n = self.reader[0].open(self._nonce(self.reader), aad, mv[5:5 + length], length)
        except AuthError:
            raise TLSError(BAD_RECORD_MAC, "bad record MAC: a record was changed in transit") from None
        while n > 0 and buf[4 + n] == 0:  # strip the zero padding; the last non-zero byte is the type
            n -= 1
        if n == 0:
            raise TLSError(UNEXPECTED_MESSAGE, "unexpected message: record without a content type")
        if n - 1 > MAX_PLAINTEXT:
            raise TLSError(RECORD_OVERFLOW, "record overflow: plaintext too long")
        return buf[4 + n], mv[5:4 + n]

    def write(self, ctype, data, legacy_version=3):
        """Send `data` as records of type `ctype`, split at the send limit."""
        mv = memoryview(data)
        while True:
            chunk = mv[:self.send_max]
            mv = mv[len(chunk):]
            self._write_one(ctype, chunk, legacy_version)
            if not len(mv):
                return

    def _write_one(self, ctype, chunk, legacy_version):
        out = self._out
        n = len(chunk)
        out[5:5 + n] = chunk
        if self.writer is None:
            out[0:5] = bytes((ctype, 3, legacy_version, n >> 8, n & 0xFF))
            total = n
        else:
            out[5 + n] = ctype
            total = n + 1 + self.writer[0].tag_len
            out[0:5] = bytes((CT_APPDATA, 3, 3, total >> 8, total & 0xFF))
            self.writer[0].seal(self._nonce(self.writer), bytes(out[:5]), memoryview(out)[5:], n + 1)
        self._send(memoryview(out)[:5 + total])
        self.records_out += 1

    def send_alert(self, code, fatal=True):
        try:
            self.write(CT_ALERT, bytes((2 if fatal else 1, code)))
        except Exception:
            pass  # best effort: the connection is failing anyway
