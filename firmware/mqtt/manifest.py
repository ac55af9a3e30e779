# Feature manifest (micropython-lib style): what `safebench deploy` copies and a frozen build freezes.
# mqtt: the `mqtt.*` methods, an MQTT 5 session with a broker inside TLS 1.3 with the SIM's keys, through
# which the board publishes its signed readings.
metadata(description="safebench mqtt: signed readings published to an MQTT broker over TLS 1.3", version="0.3.0")

# require(), not include(): each manifest has its own metadata(), which MicroPython's manifestfile.py
# accepts once per require()d package only. The firmware's folders are that library.
add_library("safebench", "..")
require("tls", library="safebench")
require("readings", library="safebench")

module("mqtt5.py")
module("outbox.py")
module("mqtt_rpc.py")
