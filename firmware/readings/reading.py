# One signed sensor reading: a SenML pack (RFC 8428) in CBOR, signed as COSE_Sign1 by the SIM.
#
# The pack names the device (base name from the ICCID), the time from the modem's network clock
# (base time, omitted while the network has not set it), the reading, and its place in the device's
# count: the epoch (when the count started) and a sequence number that never repeats within it, so a
# verifier can reject replays, also of readings from before a wiped flash; the board it was taken on (the
# MCU's unique ID: a verifier that knows which board the SIM belongs to sees a moved SIM); and, when a
# board's outbox was full, how many readings it dropped.
from cbor import head, pairs
from cose import sign1

# SenML CBOR labels (RFC 8428 6)
_BN, _BT, _N, _U, _V, _VS = -2, -3, 0, 1, 2, 3


def senml(iccid, epoch, seq, name, unit, value, time=None, dropped=0, board=None):
    """`dropped`: readings the board's outbox had to let go since the last reading that said so (a record
    of its own, only when there were any). `board`: the board's unique ID, hex (a record of its own)."""
    out = bytearray()
    head(out, 4, 3 + (1 if dropped else 0) + (1 if board else 0))
    first = [(_BN, "urn:dev:iccid:%s:" % iccid)]
    if time is not None:
        first.append((_BT, time))
    first += [(_N, name), (_U, unit), (_V, value)]
    pairs(out, first)
    pairs(out, ((_N, "epoch"), (_V, epoch)))
    pairs(out, ((_N, "seq"), (_V, seq)))
    if board:
        pairs(out, ((_N, "board"), (_VS, board)))
    if dropped:
        pairs(out, ((_N, "dropped"), (_V, dropped)))
    return bytes(out)


def signed_reading(card, key, kid, iccid, epoch, seq, sensor, time=None, dropped=0, board=None):
    """COSE_Sign1 bytes of one reading; `sensor` is (name, unit, value)."""
    payload = senml(iccid, epoch, seq, sensor[0], sensor[1], sensor[2], time, dropped, board)
    return sign1(payload, kid, lambda digest: card.sign_hash(key, digest))
