# Finding the roles on the card (docs/iotsafe.md §7.4): what each container is for, from the object list's
# kinds, labels, key types, functions and access conditions, and the certificate that holds the public
# key of a signing key pair. Imported once per boot by simroles.find, and let go after it.
from apdu import CardError
from micropython import const

_SIGNATURE = const(0x01)  # tag 61, crypto functions
_KEY_GENERATION = const(0x02)
_KEY_AGREEMENT = const(0x04)
_READ = const(0x01)  # tag 60, access conditions
_UPDATE = const(0x02)
_VOLATILE = const(0x14)  # tag 4B, key type
_PERSISTENT = const(0x13)
_P256 = (_PERSISTENT, _VOLATILE)
_X509 = const(0x02)  # tag 21, file usage
_SW_CHANNEL_CLOSED = const(0x6881)  # the session reopens the channel and asks again: never swallowed here
# An uncompressed P-256 key as a DER BIT STRING (03 42 00 04 X Y): in a certificate, its subjectPublicKeyInfo.
_KEY_BITS = b"\x03\x42\x00"


def _allows(record, tag, bits):
    """True when the attribute `tag` has all `bits`, or the card does not say."""
    value = record["attributes"].get(tag)
    return not value or value[-1] & bits == bits


def _is(record, tag, values):
    value = record["attributes"].get(tag)
    return not value or value[0] in values


def _filled(record):
    return _is(record, 0x4A, (1,))


def _half(private, publics):
    """The public key of a private key's pair: the one with its label (IoT.05 §2.11.2), else with its ID."""
    label = private.get("label")
    for p in publics:
        if (p.get("label") == label) if label else p["id"] == private["id"]:
            return p
    return None


def _quietly(read, ref):
    """read(ref), or None when the card refuses (access, state): that object just cannot help."""
    try:
        return read(ref)
    except CardError as e:
        if e.sw == _SW_CHANNEL_CLOSED:
            raise
        return None


def discover(card, files, given):
    """{role: ID or None} of the card's objects; roles in `given` (sim.json) are taken as they are."""
    objects = [r for r in card.objects() if "id" in r]
    privates = [r for r in objects if r["kind"] == "private_key"]
    publics = [r for r in objects if r["kind"] == "public_key"]
    certs = [r for r in objects if r["kind"] == "file" and _filled(r) and _allows(r, 0x60, _READ)]
    certs = [r for r in certs if _is(r, 0x21, (_X509,))] + [r for r in certs if not _is(r, 0x21, (_X509,))]

    def read_file(ref):
        data = files.get(ref)
        if data is None:
            data = files[ref] = card.read_file(ref)
        return data

    if "signing_key" in given:
        pairs = [(p, _half(p, publics)) for p in privates if p["id"] == given["signing_key"]]
    else:
        pairs = [(p, _half(p, publics)) for p in privates if _allows(p, 0x61, _SIGNATURE) and _is(p, 0x4B, _P256)
                 and _filled(p)]
    pairs = [pair for pair in pairs if pair[1] is not None]
    if "client_cert" in given:
        certs = [r for r in certs if r["id"] == given["client_cert"]]

    key = public = cert = None
    hidden = False  # a pair whose public key the card does not let us read (the Thales MVP card's: access 02)
    for private, half in pairs:
        point = _quietly(card.read_public_key, half["id"]) if _allows(half, 0x60, _READ) else None
        if point is None:
            hidden = True
            continue
        for f in certs:
            data = _quietly(read_file, f["id"])
            if data and _KEY_BITS + point in data:
                key, public, cert = private, half, f
                break
        if key:
            break
    if key is None and len(pairs) == 1:  # one signing key pair: the reading key, certified or not (yet)
        key, public = pairs[0]
        if hidden and len(certs) == 1:
            cert = certs[0]

    others = [r for r in certs if r is not cert and _is(r, 0x21, (_X509,))]
    # A factory card's operational key (docs/enrolment.md): persistent, for signatures, made on the card at
    # enrolment, and not the key of the certificate the card holds (the bootstrap one). Never an ECDHE key: a
    # handshake would overwrite it (the Thales MVP card's keys can agree keys too). The secret: the one that
    # seals the board's state in flash (flash_seal.py). One loop, no comprehension: the search's code is the
    # first reading's heap peak.
    enrolment = secret = None
    for r in objects:
        if r["kind"] == "secret_key":
            if secret is None and _filled(r):
                secret = r
        elif (enrolment is None and r["kind"] == "private_key" and r is not key and _is(r, 0x4B, (_PERSISTENT,))
              and _allows(r, 0x61, _SIGNATURE | _KEY_GENERATION) and _half(r, publics)):
            enrolment = r
    ephemeral = [p for p in privates if p is not key and p is not enrolment
                 and _allows(p, 0x61, _KEY_GENERATION | _KEY_AGREEMENT) and _is(p, 0x4B, _P256) and _half(p, publics)]
    ephemeral = [p for p in ephemeral if _is(p, 0x4B, (_VOLATILE,))] + ephemeral
    halves = [_half(p, publics) for p in privates]
    peers = [q for q in publics if not any(h is q for h in halves) and _allows(q, 0x60, _UPDATE)
             and _allows(q, 0x61, _KEY_AGREEMENT) and _is(q, 0x4B, _P256)]
    return {"signing_key": _id(key), "signing_public_key": _id(public), "client_cert": _id(cert), "secret": _id(secret),
            "enrolment_key": _id(enrolment), "enrolment_public_key": _id(enrolment and _half(enrolment, publics)),
            "ca_cert": _id(others[0]) if len(others) == 1 else None,
            "ephemeral_key": _id(ephemeral[0] if ephemeral else None), "peer_key": _id(peers[0] if peers else None)}


def _id(record):
    return record["id"] if record else None
