"""The fewest APDUs, AT commands and UART bytes the IoT SAFE interface allows for each operation.

Every bound is a list of `Exchange`s: the shortest command the interface accepts for a step and the
response the card cannot avoid sending (docs/iotsafe.md §4, with the ISO 7816-4 APDU cases of §3.2):

- case 1 (no data, no Le): 4 bytes, e.g. closing a session (`80 2A 01 01`, §4.2);
- case 2 (Le only): 5 bytes; the data comes back directly, also on T=0, when Le is the exact size;
- case 3 (data, no Le): 5 + Lc bytes, no response data;
- case 4 (data and Le): 6 + Lc bytes; on a T=0 card the answer is `61xx` and the data needs a
  GET RESPONSE (5 bytes): no modem sends it by itself (§3.3).

A response is at most 256 bytes (short APDUs, §3.2), so reading S bytes takes ceil(S/256) commands.
A card that keeps a signature session open until Init P1=01 closes it (the simulator does, and the
Thales MVP card allows one session, §4.2) needs that close after every signature: `Card.close_session`.

Bytes are those of the AT+CSIM lines (`framing`: hex, so twice the APDU, plus the line) with echo
off, for the modem's reply style; AT commands are one AT+CSIM per APDU plus the non-SIM commands the
operation cannot do without (`AtCommand`). What a board can cache for its whole boot (ICCID, the
certificate files, the kid = SHA-256 of the certificate) costs nothing per operation. Modeled time = the card latency of
each INS from the timing model + the UART time of all bytes.
"""

from dataclasses import dataclass, field

from . import framing

SHORT_LE = 256  # most response bytes per APDU
FULL_TEXT_BLOCK = 253  # message bytes per Compute Signature Update in mode 01: one `9B FD <253>` TLV
SHA256 = 32
P256_POINT = 65  # 04 || X || Y
PUBLIC_KEY_TEMPLATE = 2 + 2 + 2 + P256_POINT  # 34 45 49 43 86 41 04 X Y: 71 bytes (§4.6)
CCLK_REPLY = '+CCLK: "yy/MM/dd,hh:mm:ss+zz"'  # 27.007 §8.15: fixed length

INS_GET_RESPONSE = 0xC0


@dataclass(frozen=True)
class Card:
    """What decides the bound on a card: its transport, its session rule and its encodings."""

    t0: bool = True
    close_session: bool = True
    sig_length_bytes: int = 1  # tag-33 length field: 1 (`33 40`, Thales MVP) or 2 (`33 00 40`, ZARIOT)
    key_id_len: int = 1
    file_id_len: int = 1
    aid_len: int = 7
    quoted_hex: bool = True
    space_after_colon: bool = True


@dataclass(frozen=True)
class Exchange:
    ins: int
    what: str
    command: int  # bytes of the command APDU
    response: int  # response data bytes (SW1 SW2 not included)


@dataclass(frozen=True)
class AtCommand:
    line: str
    info: tuple = ()


@dataclass
class Bound:
    exchanges: list
    at: list = field(default_factory=list)
    notes: str = ""

    def counts(self, card, timing):
        """{apdus, at_commands, bytes_to_modem, bytes_from_modem, model_ms}; `timing` a TimingModel."""
        to = back = 0
        card_ms = 0.0
        for x in self.exchanges:
            t, f = framing.csim_bytes(x.command, x.response + 2, card.quoted_hex, card.space_after_colon)
            to, back, card_ms = to + t, back + f, card_ms + timing.latency_ms(x.ins)
        for a in self.at:
            to += framing.command_bytes(a.line)
            back += framing.reply_bytes(list(a.info), "OK")
        return {"apdus": len(self.exchanges), "at_commands": len(self.exchanges) + len(self.at),
                "bytes_to_modem": to, "bytes_from_modem": back,
                "model_ms": round(card_ms + timing.uart_ms(to + back), 1)}


# -- APDU cases ---------------------------------------------------------------------------------

def case1(ins, what):
    return [Exchange(ins, what, 4, 0)]


def case2(ins, what, response):
    return [Exchange(ins, what, 5, response)]


def case3(ins, what, lc):
    return [Exchange(ins, what, 5 + lc, 0)]


def case4(ins, what, lc, response, card):
    if card.t0:
        return [Exchange(ins, what, 6 + lc, 0), Exchange(INS_GET_RESPONSE, "GET RESPONSE", 5, response)]
    return [Exchange(ins, what, 6 + lc, response)]


def chunks(size, most=SHORT_LE):
    """Sizes of the responses that carry `size` bytes."""
    return [min(most, size - off) for off in range(0, size, most)] or [0]


# -- operations -----------------------------------------------------------------------------------

def channel_setup(card):
    """Once per boot: MANAGE CHANNEL open (case 2, 1 byte back: the channel) and SELECT of the applet.

    Closing channels a previous run may have left open, and the modem's AT/ATE0/AT+CMEE set-up, are
    robustness the interface does not require."""
    return Bound(case2(0x70, "MANAGE CHANNEL open", 1) + case3(0xA4, "SELECT applet", card.aid_len))


def sim_info(applet_info_len, object_list_len):
    """GET DATA application (case 2, §4.3) and the object list in 256-byte responses (P2 00, then 01).

    The ICCID comes from the modem once per boot (it cannot change without a +CPIN URC)."""
    ex = case2(0xCB, "GET DATA application", applet_info_len)
    for part in chunks(object_list_len):
        ex += case2(0xCB, "GET DATA object list", part)
    return Bound(ex, notes="object list in its smallest (unwrapped) shape; ICCID cached per boot")


def read_file(size, card):
    """READ FILE (§4.4): case 4 (the file reference `83 LL id` and Le 00), 256 bytes a response.

    The size need not be asked first (GET DATA C3): the last response is short, and a certificate
    says its length in its DER header."""
    ex = []
    for part in chunks(size):
        ex += case4(0xB0, "READ FILE", 2 + card.file_id_len, part, card)
    return Bound(ex, notes=f"{size} bytes in {len(chunks(size))} READ FILE")


def _sign_init(card):
    # 84 LL id | A1 01 mode | 91 02 00 hash | 92 01 04 (§4.5)
    return case3(0x2A, "Compute Signature Init", 2 + card.key_id_len + 3 + 4 + 3)


def _signature(card):
    return 1 + card.sig_length_bytes + 64  # 33 LL r||s


def _sign_close(card):
    return case1(0x2A, "close session") if card.close_session else []


def sign_hash(card):
    """Init, Update with `9E 20 <hash>` (mode 03, case 4: the signature comes back), the close."""
    update = case4(0x2B, "Compute Signature Update", 2 + SHA256, _signature(card), card)
    return Bound(_sign_init(card) + update + _sign_close(card))


def sign_full_text(length, card):
    """Mode 01: the card hashes; one `9B LL <≤253 bytes>` TLV per Update, the last one case 4."""
    ex = _sign_init(card)
    parts = chunks(length, FULL_TEXT_BLOCK)
    for part in parts[:-1]:
        ex += case3(0x2B, "Compute Signature Update (more)", 2 + part)
    ex += case4(0x2B, "Compute Signature Update", 2 + parts[-1], _signature(card), card)
    return Bound(ex + _sign_close(card))


def sign_message(length, card, timing):
    """The cheaper of hashing on the board (mode 03) and on the card (mode 01): fewest APDUs, then bytes."""
    def cost(b):
        c = b.counts(card, timing)
        return c["apdus"], c["bytes_to_modem"] + c["bytes_from_modem"]

    hashed, full = sign_hash(card), sign_full_text(length, card)
    best = min((hashed, full), key=cost)
    best.notes = "message hashed on the board (mode 03)" if best is hashed else "message hashed on the card (mode 01)"
    return best


def signed_reading(card):
    """A signature over the COSE Sig_structure digest and the network time (AT+CCLK?) per reading."""
    b = sign_hash(card)
    b.at = [AtCommand("AT+CCLK?", (CCLK_REPLY,))]
    b.notes = "kid and ICCID cached per boot"
    return b


def tls_handshake(card, key_made_ahead=False):
    """TLS 1.3 client with the SIM's keys; the trust anchor and the client certificate are files that
    do not change under a running board, read once per boot (the first handshake pays `read_file`).

    ECDHE: Generate Key Pair in the ephemeral container (case 4; the answer is `84 LL id 85 LL id` +
    the public key template, §4.6), Put Public Key of the server's share (Init, Update with the
    71-byte template, close; §4.6), Compute DH (case 4, the 32-byte X back, §4.7);
    CertificateVerify: a hash signature. The network time (AT+CCLK?) checks the server certificate.
    `key_made_ahead`: the critical path of a handshake whose key pair the previous one made."""
    ref = 2 + card.key_id_len
    ex = [] if key_made_ahead else case4(0xB9, "Generate Key Pair", ref, 2 * ref + PUBLIC_KEY_TEMPLATE, card)
    ex += case3(0x24, "Put Public Key Init", ref) + case3(0xD8, "Put Public Key Update", PUBLIC_KEY_TEMPLATE)
    ex += case1(0x24, "close session") if card.close_session else []
    ex += case4(0x46, "Compute DH", 2 * ref, SHA256, card)
    ex += sign_hash(card).exchanges
    return Bound(ex, [AtCommand("AT+CCLK?", (CCLK_REPLY,))],
                 notes="certificates cached per boot; the records go over the network, not counted here")


def card_from_image(doc):
    """A `Card` from a simulated card image (safebench_simulator card JSON: profile, roles, aid)."""
    profile, roles = doc.get("profile") or {}, doc.get("roles") or {}
    modem = profile.get("modem") or {}
    return Card(t0=bool(profile.get("t0", True)), close_session=True,
                sig_length_bytes=2 if profile.get("sig_length_form") == 2 else 1,
                key_id_len=len(roles.get("signing_key", "01")) // 2, file_id_len=len(roles.get("client_cert", "02")) // 2,
                aid_len=len(doc.get("aid", "A0000005590010")) // 2,
                quoted_hex=modem.get("quoted_hex", True), space_after_colon=modem.get("space_after_colon", True))
