# GSMA IoT SAFE (IoT.05) applet client: files, signatures, keys and key agreement on the SIM.
#
# Objects are addressed by ID (bytes, any length) or by label (str). Two-phase operations
# (signature, verification, public key import) run in a session that is always closed, also after
# an error: a session left open blocks the next Init with 6A86 until the card is reset.
# Cards disagree on encodings (docs/iotsafe.md §5, §8); the parser takes every variant seen.
from apdu import CardError, LogicalChannel
from micropython import const

AID = b"\xa0\x00\x00\x05\x59\x00\x10"  # the GSMA IoT SAFE AID
# Tried in turn (docs/iotsafe.md §2.1): the GSMA AID, Thales' "MVP" applet, the older Thales applet.
AIDS = (AID, b"\xa0\x00\x00\x00\x30\x53\xf1\x24\x01\x77\x01\x01\x49\x53\x41", b"\xa0\x00\x00\x02\x48\x04\x00")

_INS_GET_DATA = const(0xCB)
_INS_READ_FILE = const(0xB0)
_INS_GET_RANDOM = const(0x84)
_INS_SIGN_INIT = const(0x2A)
_INS_SIGN_UPDATE = const(0x2B)
_INS_VERIFY_INIT = const(0x2C)
_INS_VERIFY_UPDATE = const(0x2D)
_INS_GENERATE = const(0xB9)
_INS_READ_PUBLIC = const(0xCD)
_INS_PUT_PUBLIC_INIT = const(0x24)
_INS_PUT_PUBLIC_UPDATE = const(0xD8)
_INS_DH = const(0x46)
_SESSION = const(1)
_LAST = const(0x80)
_MODE_FULL_TEXT = const(1)
_MODE_PAD_AND_SIGN = const(3)
_SIG_ECDSA = const(4)
_SW_MORE = const(0x6300)
_SW_MISMATCH = const(0x6D01)
_CHUNK = const(240)  # READ FILE bytes per APDU: fits every modem's +CSIM buffer
_TEXT_BLOCK = const(253)  # full-text data per Update: one 9B TLV in a short APDU
_SLOW_MS = const(30000)  # key generation and on-card ECDSA take seconds on real SIMs

HASH_SHA256, HASH_SHA384, HASH_SHA512 = 1, 2, 4
FILE, PRIVATE_KEY, PUBLIC_KEY, SECRET_KEY = 0x83, 0x84, 0x85, 0x86  # ID tags; label tag = ID tag - 0x10
KINDS = {FILE: "file", PRIVATE_KEY: "private_key", PUBLIC_KEY: "public_key", SECRET_KEY: "secret_key"}
_INFO_P1 = {PRIVATE_KEY: 0xC1, PUBLIC_KEY: 0xC2, FILE: 0xC3, SECRET_KEY: 0xC4}
_RECORD_START = (0x73, 0x74, 0x75, 0x76, 0x83, 0x84, 0x85, 0x86)


def tlv(tag, value):
    return bytes((tag, len(value))) + value


def ref(kind, obj):
    """The reference TLV of an object: an ID (bytes) or a label (str)."""
    if isinstance(obj, str):
        return tlv(kind - 0x10, obj.encode())
    return tlv(kind, obj)


def tlvs(data):
    """(tag, value) pairs of a flat TLV run, tolerant of the variants real cards produce."""
    i, n = 0, len(data)
    while i + 2 <= n:
        tag, length = data[i], data[i + 1]
        i += 2
        if tag == 0x33 and length == 0 and i < n:  # `33 00 40`: 2-byte length form
            length = data[i]
            i += 1
        elif tag == 0x92 and length == 2 and i + 1 < n and data[i + 1] == 0x91:
            length = 1  # Thales MVP `92 02 04`: the length says 2, the value is 1 byte
        yield tag, data[i:i + length]
        i += length


def find_tlv(data, tag):
    """The value of the first `tag` in a flat TLV run, or None."""
    for t, v in tlvs(data):
        if t == tag:
            return v
    return None


def public_point(data):
    """04||X||Y from `34 45 49 43 86 41 04..`, with or without the wrappers and key references."""
    for tag in (0x34, 0x49, 0x86):
        inner = find_tlv(data, tag)
        if inner is not None:
            data = inner
    if len(data) != 65 or data[0] != 4:
        raise CardError(0x6F00, "public key is not an uncompressed P-256 point")
    return bytes(data)


def parse_records(data):
    """Object records from an object list or an info answer: [{kind, id, label, attributes}].

    Takes all three shapes seen in the wild: unwrapped, one C1-C4 wrapper per object, one per class.
    """
    records, current = [], None
    for tag, value in tlvs(data):
        if 0xC1 <= tag <= 0xC4:
            records.extend(parse_records(value))
            current = None
            continue
        if tag in _RECORD_START and (current is None or _starts_new(current, tag)):
            current = {"attributes": {}}
            records.append(current)
        if current is None:
            continue
        if tag in KINDS:
            current["kind"], current["id"] = KINDS[tag], bytes(value)
        elif tag + 0x10 in KINDS:
            current["kind"], current["label"] = KINDS[tag + 0x10], bytes(value)
        else:
            current["attributes"][tag] = bytes(value)
    return records


def _starts_new(record, tag):
    key = "id" if tag >= 0x83 else "label"
    return key in record or record.get("kind") != KINDS[tag if tag >= 0x83 else tag + 0x10]


class IoTSafe:
    def __init__(self, csim, aids=AIDS, proprietary_cla=True):
        self.channel = LogicalChannel(csim, proprietary_cla)
        self.aids = aids
        self.aid = None
        self.chunk = min(_CHUNK, csim.max_data)  # READ FILE bytes per APDU
        self.text_block = min(_TEXT_BLOCK, csim.max_data - 2)  # full text per Update, after the 9B header

    def open(self):
        self.aid = self.channel.open(self.aids)

    # -- information ------------------------------------------------------------------

    def applet_info(self):
        """The applet's capability TLVs as {tag: value}."""
        return {t: bytes(v) for t, v in tlvs(self.channel.send(_INS_GET_DATA, 0, 0, None, 0, "GET DATA application"))}

    def objects(self):
        """Every object on the card, following 6300 'more data' continuations."""
        data, p2 = bytearray(), 0
        while True:
            resp, sw = self.channel.command(_INS_GET_DATA, 0x01, p2, None, 0)
            data += resp
            if sw != _SW_MORE:
                break
            p2 = 1
        if sw != 0x9000:
            raise CardError(sw, "GET DATA object list")
        return parse_records(data)

    def object_info(self, kind, obj):
        resp = self.channel.send(_INS_GET_DATA, _INFO_P1[kind], 0, ref(kind, obj), 0, "GET DATA object info")
        records = parse_records(resp)
        return records[0] if records else {"attributes": {t: bytes(v) for t, v in tlvs(resp)}}

    # -- files and randomness -----------------------------------------------------------

    def file_size(self, file):
        size = self.object_info(FILE, file)["attributes"].get(0x20)
        if size is None or len(size) != 2:
            raise CardError(0x6F00, "file info without a size")
        return (size[0] << 8) | size[1]

    def read_file(self, file):
        size = self.file_size(file)
        out = bytearray(size)
        reference = ref(FILE, file)
        offset = 0
        while offset < size:
            want = min(self.chunk, size - offset)
            chunk = self.channel.send(_INS_READ_FILE, offset >> 8, offset & 0xFF, reference, want, "READ FILE")
            if not chunk:
                raise CardError(0x6F00, "READ FILE returned no data")
            chunk = memoryview(chunk)[:size - offset]  # some cards pad the last chunk with zeros
            out[offset:offset + len(chunk)] = chunk
            offset += len(chunk)
        return bytes(out)

    def random(self, n):
        return self.channel.send(_INS_GET_RANDOM, 0, 0, None, n, "GET RANDOM")

    # -- signatures -----------------------------------------------------------------------

    def sign_hash(self, key, digest, hash_alg=HASH_SHA256):
        """ECDSA over a digest computed by the caller (pad-and-sign); returns raw r||s."""
        return self._sign(key, _MODE_PAD_AND_SIGN, hash_alg, tlv(0x9E, digest))

    def sign_message(self, key, message, hash_alg=HASH_SHA256):
        """ECDSA over a message the card hashes itself (full text); returns raw r||s."""
        return self._sign(key, _MODE_FULL_TEXT, hash_alg, message)

    def _sign(self, key, mode, hash_alg, payload):
        self._init(_INS_SIGN_INIT, PRIVATE_KEY, key, mode, hash_alg, "Compute Signature Init")
        try:
            if mode == _MODE_FULL_TEXT:
                resp = self._update_text(_INS_SIGN_UPDATE, payload, b"", "Compute Signature Update")
            else:
                resp = self.channel.send(_INS_SIGN_UPDATE, _LAST, _SESSION, payload, 0, "Compute Signature Update",
                                         _SLOW_MS)
        finally:
            self._close(_INS_SIGN_INIT)
        sig = find_tlv(resp, 0x33)
        if sig is None or len(sig) != 64:
            raise CardError(0x6F00, "signature is not raw r||s of 64 bytes")
        return bytes(sig)

    def verify_hash(self, key, digest, signature, hash_alg=HASH_SHA256):
        """Check raw r||s over a digest with a public key on the card: True, or False on 6D01."""
        self._init(_INS_VERIFY_INIT, PUBLIC_KEY, key, _MODE_PAD_AND_SIGN, hash_alg, "Verify Signature Init")
        try:
            _, sw = self.channel.command(_INS_VERIFY_UPDATE, _LAST, _SESSION,
                                         tlv(0x9E, digest) + tlv(0x33, signature), None, _SLOW_MS)
        finally:
            self._close(_INS_VERIFY_INIT)
        if sw == _SW_MISMATCH:
            return False
        if sw != 0x9000:
            raise CardError(sw, "Verify Signature Update")
        return True

    def _init(self, ins, kind, key, mode, hash_alg, what):
        data = (ref(kind, key) + tlv(0xA1, bytes((mode,))) + b"\x91\x02\x00" + bytes((hash_alg,))
                + tlv(0x92, bytes((_SIG_ECDSA,))))
        self.channel.send(ins, 0x00, _SESSION, data, None, what)

    def _update_text(self, ins, message, tail, what):
        """Full-text data in blocks of one 9B TLV each; the last block also carries `tail`."""
        mv, resp, offset = memoryview(message), b"", 0
        while True:
            block = mv[offset:offset + self.text_block]
            offset += len(block)
            last = offset >= len(message)
            data = tlv(0x9B, block) + (tail if last else b"")
            resp = self.channel.send(ins, _LAST if last else 0, _SESSION, data, 0 if last else None, what, _SLOW_MS)
            if last:
                return resp

    def _close(self, ins):
        try:
            self.channel.send(ins, 0x01, _SESSION, None, None, "close session")
        except CardError:
            pass  # the card had closed it already; nothing is left open

    # -- keys and key agreement -------------------------------------------------------------

    def generate_key_pair(self, key):
        """A fresh key pair in the private key container `key`; returns the new public point 04||X||Y."""
        resp = self.channel.send(_INS_GENERATE, 0, 0, ref(PRIVATE_KEY, key), 0, "Generate Key Pair", _SLOW_MS)
        return public_point(resp)

    def read_public_key(self, key):
        return public_point(self.channel.send(_INS_READ_PUBLIC, 0, 0, ref(PUBLIC_KEY, key), 0, "Read Public Key"))

    def put_public_key(self, key, point):
        """Store a peer's P-256 public point (04||X||Y) in the public key container `key`."""
        self.channel.send(_INS_PUT_PUBLIC_INIT, 0x00, _SESSION, ref(PUBLIC_KEY, key), None, "Put Public Key Init")
        try:
            value = tlv(0x49, tlv(0x86, point))
            self.channel.send(_INS_PUT_PUBLIC_UPDATE, _LAST, _SESSION, tlv(0x34, value), None, "Put Public Key Update")
        finally:
            self._close(_INS_PUT_PUBLIC_INIT)

    def compute_dh(self, private_key, peer_public_key):
        """ECKA-DH with two keys on the card; returns the shared secret (the X coordinate)."""
        data = ref(PRIVATE_KEY, private_key) + ref(PUBLIC_KEY, peer_public_key)
        return self.channel.send(_INS_DH, 0, 0, data, 0, "Compute DH", _SLOW_MS)
