# SIMCom SIM7080G: ICCID spelling, PDP context and TCP sockets (the CNCFG/CNACT/CAOPEN application commands).
from atchannel import ATError, ATTimeout
from modem_sockets import SocketModem

_PDP = 0
_OPEN_ERRORS = {b"20": "dns", b"23": "refused"}  # +CAOPEN <result>: cannot resolve the host, remote refused


class SimCom(SocketModem):
    ICCID_COMMANDS = ((b"AT+CICCID", b"+ICCID:"),) + SocketModem.ICCID_COMMANDS
    DATA_URC = b"+CADATAIND: "
    CLOSED_URC = b"+CASTATE: "

    def on_urc(self, line):
        if line.startswith(self.CLOSED_URC) and not line.endswith(b",0"):
            return  # +CASTATE: <cid>,1 reports a connection that is up
        super().on_urc(line)

    def configure_pdp(self, settings):
        """The APN of the network attach (AT+CGDCONT) and of the sockets' app context (AT+CNCFG; 1: IPv4)."""
        from bringup import define_context  # configure_pdp runs within the bring-up

        define_context(self, settings)
        self.at.command(b'AT+CNCFG=%d,1,"%s","%s","%s",%d' % (
            _PDP, settings["apn"].encode(), settings["user"].encode(), settings["password"].encode(),
            settings["auth"]))

    def pdp_active(self):
        active = self.at.command(b"AT+CNACT?", b"+CNACT:")
        return any(line[7:].strip().startswith(b"%d,1" % _PDP) for line in active)

    def activate_pdp(self):
        if not self.pdp_active():
            self.at.command(b"AT+CNACT=%d,1" % _PDP, timeout_ms=150000)

    def open_tcp(self, host, port, timeout_ms=30000, conn_id=0):
        self.attach()
        try:
            lines = self._open(host, port, timeout_ms, conn_id)
        except ATTimeout:
            raise self.open_failed("timeout", host, port, "no +CAOPEN within %d ms" % timeout_ms) from None
        result = lines[-1].split(b",")[-1].strip() if lines else b"?"
        if result != b"0":
            raise self.open_failed(_OPEN_ERRORS.get(result), host, port, "+CAOPEN result %s" % result.decode())
        return self.stream(conn_id, host, port, timeout_ms)

    def _open(self, host, port, timeout_ms, conn_id):
        """The +CAOPEN lines of a connect."""
        command = b'AT+CAOPEN=%d,%d,"TCP","%s",%d' % (conn_id, _PDP, host.encode(), port)
        try:
            return self.at.command(command, b"+CAOPEN:", timeout_ms)
        except ATTimeout:
            raise
        except ATError:  # the id is still open: a board reset left the modem's connection behind
            self.close_quietly(conn_id)
            return self.at.command(command, b"+CAOPEN:", timeout_ms)

    def send(self, conn_id, data, timeout_ms):
        self.at.command(b"AT+CASEND=%d,%d" % (conn_id, len(data)), data=data, timeout_ms=timeout_ms)

    def recv(self, conn_id, dest):
        self.waiting.discard(conn_id)
        dest = memoryview(dest)[:self.RECV_MAX]
        return self.at.command(b"AT+CARECV=%d,%d" % (conn_id, len(dest)), b"+CARECV:", payload=dest)

    def close(self, conn_id):
        self.at.command(b"AT+CACLOSE=%d" % conn_id, timeout_ms=10000)
