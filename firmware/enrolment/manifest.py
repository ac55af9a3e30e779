# Feature manifest (micropython-lib style): what `safebench deploy` copies and a frozen build freezes.
# enrolment: the `enroll` method, zero-touch enrolment of a factory SIM over EST (RFC 7030) inside TLS 1.3
# with the SIM's keys: the SIM makes the key pair, the board the certificate request (PKCS#10).
metadata(description="safebench enrolment: the SIM's operational identity from an EST server", version="0.1.0")

# require(), not include(): each manifest has its own metadata(), which MicroPython's manifestfile.py
# accepts once per require()d package only. The firmware's folders are that library.
add_library("safebench", "..")
require("tls", library="safebench")

module("pkcs10.py")
module("est.py")
module("enrolment_rpc.py")
