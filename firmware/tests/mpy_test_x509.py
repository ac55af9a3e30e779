# X.509 parsing and chain validation against fixed certificates (vectors/x509_fixtures.txt, made by
# vectors/make_x509.py) and the RSA certificate of RFC 8448.
import p256
import tvectors
import x509

F = tvectors.load("x509_fixtures.txt")[0]
NOW = (2025, 6, 1, 12, 0, 0)


def _fails(reason, chain, host="localhost", now=NOW, anchor=None):
    try:
        x509.validate_chain(chain, anchor or F["root"], now, host, p256.verify)
    except x509.CertError as e:
        assert e.reason == reason, (reason, e.reason, str(e))
        return str(e)
    raise AssertionError("accepted: expected " + reason)


def test_parse():
    c = x509.Certificate(F["server"])
    assert x509.name_text(c.subject) == "O=fixtures, CN=localhost"
    assert c.issuer == x509.Certificate(F["root"]).subject
    assert c.not_before == (2024, 1, 1, 0, 0, 0) and c.not_after == (2034, 1, 1, 0, 0, 0)
    assert c.dns == [b"localhost", b"*.example.com"] and c.ips == [b"\x7f\x00\x00\x01"]
    assert len(c.point()) == 65 and not c.ca and c.key_usage == 0x8000
    root = x509.Certificate(F["root"])
    assert root.ca and root.path_len == 1 and root.key_usage & 0x0400


def test_valid_chains():
    for host in ("localhost", "LOCALHOST", "127.0.0.1", "a.example.com"):
        leaf = x509.validate_chain([F["server"]], F["root"], NOW, host, p256.verify)
        assert leaf.subject == x509.Certificate(F["server"]).subject
    chain = [F["server_via_intermediate"], F["intermediate"]]
    x509.validate_chain(chain, F["root"], NOW, "device.example.net", p256.verify)
    x509.validate_chain([F["server"], F["root"]], F["root"], NOW, "localhost", p256.verify)  # anchor sent along


def test_unknown_ca():
    msg = _fails(x509.UNKNOWN_CA, [F["server_other_ca"]])
    assert msg.startswith("unknown CA") and "some other CA" in msg
    _fails(x509.UNKNOWN_CA, [F["server_via_intermediate"]], "device.example.net")  # intermediate missing


def test_expired_and_not_yet_valid():
    assert "expired on 2020-01-01" in _fails(x509.EXPIRED, [F["server_expired"]])
    assert "not valid before" in _fails(x509.EXPIRED, [F["server"]], now=(2023, 12, 31, 23, 59, 59))
    assert "trust anchor" in _fails(x509.EXPIRED, [F["server"]], now=(2034, 1, 1, 0, 0, 1))


def test_host_names():
    for host in ("example.com", "a.b.example.com", "localhost.evil", "127.0.0.2", "xlocalhost"):
        msg = _fails(x509.BAD_HOST, [F["server"]], host)
        assert "not " + host in msg


def test_signature_and_extensions():
    assert "does not verify" in _fails(x509.BAD_SIGNATURE, [F["server_tampered"]])  # one bit flipped in the TBS
    _fails(x509.UNSUPPORTED, [F["server_critical_policy"]])
    # a leaf is no CA: a certificate it "issued" must not validate
    _fails(x509.UNKNOWN_CA, [F["server"]], anchor=F["server_other_ca"])


def test_rejects_rsa_and_garbage():
    import tvectors as t

    cert_msg = t.load("rfc8448_1rtt.txt")[0]["certificate"]
    rsa = cert_msg[11:11 + 432]  # the RSA certificate inside RFC 8448's Certificate message
    try:
        x509.Certificate(rsa)
    except x509.CertError as e:
        assert e.reason == x509.UNSUPPORTED
    else:
        raise AssertionError("RSA certificate accepted")
    for junk in (b"", b"\x30", b"\x30\x83\xff\xff\xff", F["server"][:-1], F["server"] + b"\x00"):
        try:
            x509.Certificate(junk)
        except x509.CertError:
            continue
        raise AssertionError("garbage accepted")


def test_signature_der():
    raw = b"\x80" + bytes(30) + b"\x01" + bytes(31) + b"\x02"
    der = x509.ecdsa_sig_encode(raw)
    assert der[4] == 0 and x509.ecdsa_sig_decode(der) == (int.from_bytes(raw[:32], "big"), 2)
    for bad in (der + b"\x00", der[:-1], b"\x30\x06\x02\x01\x01\x02\x01\x80"):
        try:
            x509.ecdsa_sig_decode(bad)
        except x509.CertError:
            continue
        raise AssertionError("bad DER signature accepted")
