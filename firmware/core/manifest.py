# Feature manifest (micropython-lib style): what `safebench deploy` copies and a frozen build freezes.
# core: the JSON-RPC server and method table, the AT channel and modem drivers, APDUs over AT+CSIM, the
# IoT SAFE client, the SIM session, and the sim.* and modem.* handlers. Every other feature requires it.
metadata(description="safebench core: command protocol, modem, SIM and IoT SAFE applet", version="0.2.0")

module("rpc_codes.py")
module("jsonrpc.py")
module("service.py")
module("atchannel.py")
module("utc.py")
module("modem.py")
module("modem_sockets.py")
module("quectel.py")
module("simcom.py")
module("modems.py")
module("apdu.py")
module("iotsafe.py")
module("simroles.py")
module("sim_session.py")
module("sim_rpc.py")
module("modem_rpc.py")
