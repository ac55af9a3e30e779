# ISO 7816-4 APDUs to the SIM through the modem's AT+CSIM (3GPP TS 27.007 8.17), on a logical channel.
#
# The modem keeps using the basic channel for its own USIM traffic, so an applet is selected on a
# channel opened with MANAGE CHANNEL. T=0 cards answer case-4 commands with 61xx: the data is then
# fetched with GET RESPONSE; 6Cxx asks for the same command again with the right Le.
from binascii import hexlify, unhexlify

from atchannel import ATError
from micropython import const
from rpc_codes import E_CARD, E_MODEM_REPLY

SW_OK = const(0x9000)
_INS_MANAGE_CHANNEL = const(0x70)
_INS_SELECT = const(0xA4)
_INS_GET_RESPONSE = const(0xC0)

SW_TEXT = {
    0x6300: "more data available", 0x6400: "integrity issue", 0x6581: "memory failure",
    0x6700: "wrong length", 0x6881: "logical channel not open", 0x6981: "incompatible with file structure",
    0x6982: "security status not satisfied", 0x6984: "referenced data invalidated",
    0x6985: "conditions of use not satisfied", 0x6989: "maximum capacity reached",
    0x6A80: "incorrect data", 0x6A81: "function not supported", 0x6A82: "object or applet not found",
    0x6A84: "insufficient memory", 0x6A86: "incorrect P1/P2 (or session already open)",
    0x6B00: "offset beyond end of file", 0x6D00: "instruction not supported", 0x6D01: "signature does not match",
    0x6E00: "class not supported", 0x6F00: "unknown card error",
}


class CardError(Exception):
    """The card answered a status word other than 9000."""

    code = E_CARD

    def __init__(self, sw, what=""):
        self.sw = sw
        self.data = {"sw": "%04X" % sw}
        super().__init__("%s: card says %04X (%s)" % (what or "APDU", sw, SW_TEXT.get(sw, "unexpected status")))


class ModemReplyError(Exception):
    """The modem's +CSIM answer could not be parsed."""

    code = E_MODEM_REPLY


class Csim:
    """Raw APDU exchange through AT+CSIM: bytes in, (data, sw) out. The CLA carries the channel."""

    def __init__(self, at, timeout_ms=10000, max_line=None):
        self.at = at
        self.timeout_ms = timeout_ms
        self.apdus = 0
        # Data bytes per APDU that keep the AT line (and its answer) within the modem's line limit:
        # `AT+CSIM=NNN,"` + 2 hex digits a byte (5 header bytes, Le) + `"`, with room for a session id.
        self.max_data = min(255, (max_line - 20) // 2 - 6) if max_line else 255

    def exchange(self, apdu, timeout_ms=None):
        hexa = hexlify(apdu).upper()
        cmd = b"AT+CSIM=" + str(len(hexa)).encode() + b',"' + hexa + b'"'
        return self._ask(cmd, b"+CSIM:", timeout_ms)

    def _ask(self, cmd, prefix, timeout_ms):
        lines = self.at.command(cmd, prefix, timeout_ms or self.timeout_ms)
        self.apdus += 1
        if not lines:
            raise ModemReplyError("no %s line in the modem's answer" % prefix.decode())
        return _parse_reply(lines[-1])


class Cgla(Csim):
    """Raw APDU exchange through AT+CGLA on a channel the modem opened with AT+CCHO (TS 27.007 8.43).

    The modem puts the channel number into CLA itself, so commands go with the channel bits zero.
    """

    def __init__(self, at, session, timeout_ms=10000, max_data=255):
        super().__init__(at, timeout_ms)
        self.session = session
        self.max_data = max_data

    def exchange(self, apdu, timeout_ms=None):
        hexa = hexlify(apdu).upper()
        cmd = b"AT+CGLA=" + self.session + b"," + str(len(hexa)).encode() + b',"' + hexa + b'"'
        return self._ask(cmd, b"+CGLA:", timeout_ms)


def _parse_reply(line):
    # +CSIM: <len>,"<hex>" -- also unquoted, without the space, lower case; trust the hex, not <len>.
    # The hex is decoded through a memoryview, once: a 255-byte reply makes one 255-byte object, not five
    # copies of a 520-byte line in a heap that may have no such gap (role discovery, on a 64K board).
    start, end = line.find(b",") + 1, len(line)
    while start < end and line[start] in b' \t"':
        start += 1
    while end > start and line[end - 1] in b' \t\r\n"':
        end -= 1
    if start == 0 or end - start < 4 or (end - start) % 2:
        raise ModemReplyError("malformed answer: %r" % line[:40])
    hexa = memoryview(line)
    try:
        data, sw = unhexlify(hexa[start:end - 4]), unhexlify(hexa[end - 4:end])
    except ValueError:
        raise ModemReplyError("non-hex answer: %r" % line[:40]) from None
    return data, (sw[0] << 8) | sw[1]


class LogicalChannel:
    """An applet selected on its own logical channel; `command` handles the T=0 transport status words.

    The channel is opened with MANAGE CHANNEL through AT+CSIM; a modem that refuses that (some do)
    is asked with AT+CCHO instead, and the APDUs then go through AT+CGLA.
    """

    def __init__(self, csim, proprietary_cla=True):
        self.csim = csim
        self.link = None  # csim, or a Cgla when the modem opened the channel
        self.number = None
        self._cla = 0x80 if proprietary_cla else 0x00
        self._cla_switched = False

    def open(self, aids):
        """Open a channel and select the first applet of `aids` the card has; returns its AID."""
        try:
            data, sw = self.csim.exchange(bytes((0x00, _INS_MANAGE_CHANNEL, 0x00, 0x00, 0x01)))
        except ATError as e:
            if _sim_state(e):
                raise
            return self._open_with_ccho(aids)  # this modem refuses channels through AT+CSIM
        if sw in (0x6D00, 0x6E00, 0x6881):
            return self._open_with_ccho(aids)  # ... or its card does, on the basic channel
        _check(sw, "MANAGE CHANNEL open")
        self.link, self.number = self.csim, data[0]
        try:
            for aid in aids:
                _, sw = self.link.exchange(_apdu(self.number, _INS_SELECT, 0x04, 0x00, aid, None))
                if sw == SW_OK or sw >> 8 in (0x61, 0x91):
                    return aid
                if sw != 0x6A82:  # anything but "not here" is an answer worth reporting
                    break
            raise CardError(sw, "SELECT applet")
        except Exception:
            self.close()
            raise

    def _open_with_ccho(self, aids):
        for aid in aids:
            try:
                lines = self.csim.at.command(b'AT+CCHO="' + hexlify(aid).upper() + b'"', b"+CCHO:", bare=True)
            except ATError as e:
                if _sim_state(e):
                    raise
                continue  # the modem could not select it: try the next AID
            if not lines:
                raise ModemReplyError("no session id in the AT+CCHO answer")
            session = lines[-1].split(b":")[-1].strip()  # `+CCHO: 1`, or a bare `1`
            self.link, self.number = Cgla(self.csim.at, session, self.csim.timeout_ms, self.csim.max_data), 0
            return aid
        raise CardError(0x6A82, "AT+CCHO applet")

    def close(self):
        link, number = self.link, self.number
        self.link = self.number = None
        if link is None:
            return
        if link is self.csim:
            _, sw = link.exchange(bytes((0x00, _INS_MANAGE_CHANNEL, 0x80, number, 0x00)))
            _check(sw, "MANAGE CHANNEL close")
        else:
            link.at.command(b"AT+CCHC=" + link.session)

    def command(self, ins, p1=0, p2=0, data=None, le=None, timeout_ms=None):
        """One command to the selected applet; returns (data, sw) after the T=0 transport rules."""
        if self.link is None:
            return b"", 0x6881
        cla = self._cla | self.number
        resp, sw = self.link.exchange(_apdu(cla, ins, p1, p2, data, le), timeout_ms)
        if sw == 0x6E00 and not self._cla_switched:  # the card wants the other CLA convention (0n / 8n)
            self._cla_switched = True
            self._cla ^= 0x80
            cla = self._cla | self.number
            resp, sw = self.link.exchange(_apdu(cla, ins, p1, p2, data, le), timeout_ms)
        if sw >> 8 == 0x6C:  # wrong Le: the card says how many bytes it has
            resp, sw = self.link.exchange(_apdu(cla, ins, p1, p2, data, sw & 0xFF), timeout_ms)
        if sw >> 8 != 0x61:
            return resp, sw
        out = bytearray(resp)
        while sw >> 8 == 0x61:  # T=0: data waiting, fetch it with GET RESPONSE
            resp, sw = self.link.exchange(bytes((cla & 0x83, _INS_GET_RESPONSE, 0, 0, sw & 0xFF)))
            out += resp
        return bytes(out), sw

    def send(self, ins, p1=0, p2=0, data=None, le=None, what="", timeout_ms=None):
        """One command to the selected applet; returns its response data or raises CardError."""
        resp, sw = self.command(ins, p1, p2, data, le, timeout_ms)
        _check(sw, what)
        return resp


def _sim_state(error):
    """True for +CME ERRORs about the SIM itself (not inserted, failure, busy, wrong): not the method's fault."""
    return getattr(error, "cme", None) in (10, 13, 14, 15)


def close_stale_channels(csim, channels=(1, 2, 3)):
    """Close logical channels a previous run left open (modems keep them across host restarts).

    True once done; False if the modem would not, so the caller tries again next time."""
    for n in channels:
        try:
            csim.exchange(bytes((0x00, _INS_MANAGE_CHANNEL, 0x80, n, 0x00)))
        except ATError:
            return False
    return True


def _apdu(cla, ins, p1, p2, data, le):
    head = bytes((cla, ins, p1, p2))
    if data and len(data) > 255:
        raise ValueError("APDU data over 255 bytes")
    if data:
        head += bytes((len(data),)) + data
    if le is not None:
        head += bytes((le & 0xFF,))
    return head


def _check(sw, what):
    if sw != SW_OK and sw >> 8 != 0x91:  # 91xx: success with a proactive command pending (ETSI)
        raise CardError(sw, what)
