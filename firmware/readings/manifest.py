# Feature manifest (micropython-lib style): what `safebench deploy` copies and a frozen build freezes.
# readings: the `reading` method, a sensor reading as SenML-CBOR signed by the SIM as COSE_Sign1, with a
# sequence number that survives reboots.
metadata(description="safebench readings: SenML readings signed by the SIM (COSE_Sign1)", version="0.3.0")

# require(), not include(): each manifest has its own metadata(), which MicroPython's manifestfile.py
# accepts once per require()d package only. The firmware's folders are that library.
add_library("safebench", "..")
require("core", library="safebench")

module("cbor.py")
module("cose.py")
module("reading.py")
module("seqcounter.py")
module("reading_rpc.py")
