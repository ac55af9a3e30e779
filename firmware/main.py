# Board entry point: serve the JSON-RPC command protocol on the USB serial (docs/protocol.md).
# Ctrl-C stops it and gives the REPL back, so mpremote keeps working.
import service

service.main()
