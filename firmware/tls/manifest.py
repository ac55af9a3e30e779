# Feature manifest (micropython-lib style): what `safebench deploy` copies and a frozen build freezes.
# tls: the `tls.echo` method, a TLS 1.3 client whose ECDHE and CertificateVerify run on the SIM.
metadata(description="safebench tls: TLS 1.3 client with its keys in the SIM", version="0.3.0")

# require(), not include(): each manifest has its own metadata(), which MicroPython's manifestfile.py
# accepts once per require()d package only. The firmware's folders are that library.
add_library("safebench", "..")
require("core", library="safebench")

module("aead.py")
module("hkdf.py")
module("p256.py")
module("x509.py")
module("tls_record.py")
module("tls_messages.py")
module("tls13.py")
module("simkeys.py")
module("tls_rpc.py")
