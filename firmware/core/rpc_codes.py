# Every error code of the command protocol (docs/protocol.md), in one place: JSON-RPC 2.0's own, then the
# firmware's (each firmware exception class carries its code). Plain `NAME = -number` lines, no imports
# and no const(): the host reads this file as data (safebench.rpc_codes) without running firmware code.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601  # also a method whose feature is not deployed on the board
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
E_AT_TIMEOUT = -32001  # ATTimeout: the modem did not answer in time
E_MODEM = -32002  # ATError, CMEError: the modem answered ERROR or +CME ERROR
E_CARD = -32003  # CardError: the card answered a status word other than 9000
E_MODEM_REPLY = -32004  # ModemReplyError: the modem's +CSIM answer could not be parsed
E_TLS = -32005  # TLSError: the TLS handshake or a record failed
E_NO_EPOCH = -32006  # NoEpochError: a reading cannot be numbered: no network time for a new sequence epoch
E_NO_ROLE = -32007  # NoRoleError: the SIM has no container for a role the method needs (docs/iotsafe.md §7.3)
E_MQTT = -32008  # MQTTError: the MQTT broker refused or broke the session (data: its reason code)
E_NOT_CONNECTED = -32009  # the method needs the board's MQTT session, and none is open (mqtt.connect first)
E_SIM_REPLACED = -32010  # SimReplaced: the SIM in the board is not the one it is bound to (docs/binding.md)
E_BINDING = -32011  # BindingError: the binding record cannot be trusted, or a binding was refused
E_STORE = -32012  # StoreError: the enrolled identity in flash does not check with the SIM (docs/enrolment.md)
E_ENROLMENT = -32013  # EnrolmentError: the EST server refused the enrolment or answered what it may not
# TCP connections (core/tcp.py, whichever transport carries them), from -32020 on:
E_NETWORK = -32020  # NetworkError: a TCP connection failed (no route, no data connection, a modem socket error)
E_CONNECTION_REFUSED = -32021  # ConnectionRefused: the peer refused the connection
E_CONNECTION_RESET = -32022  # ConnectionReset: the peer reset the connection
E_HOST_NOT_FOUND = -32023  # HostNotFound: the host name does not resolve
E_NETWORK_TIMEOUT = -32024  # NetworkTimeout: the peer did not connect, answer or take data in time
