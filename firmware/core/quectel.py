# Quectel BG95/BG96: ICCID spelling, PDP context and TCP sockets (TCP/IP AT commands manual, "buffer access"
# mode).
from atchannel import ATTimeout
from modem_sockets import SocketModem

_CONTEXT = 1
_OPEN_ERRORS = {b"565": "dns", b"566": "refused", b"569": "timeout"}  # +QIOPEN <err>: DNS parse, connect, timeout
_ID_IN_USE = b"563"


class Quectel(SocketModem):
    ICCID_COMMANDS = ((b"AT+QCCID", b"+QCCID:"),) + SocketModem.ICCID_COMMANDS
    DATA_URC = b'+QIURC: "recv",'
    CLOSED_URC = b'+QIURC: "closed",'

    def configure_pdp(self, settings):
        """The APN of the sockets' context (AT+QICSGP; context type 1: IPv4)."""
        self.at.command(b'AT+QICSGP=%d,1,"%s","%s","%s",%d' % (
            _CONTEXT, settings["apn"].encode(), settings["user"].encode(), settings["password"].encode(),
            settings["auth"]))

    def pdp_active(self):
        active = self.at.command(b"AT+QIACT?", b"+QIACT:")
        return any(line[7:].strip().startswith(b"%d," % _CONTEXT) for line in active)

    def activate_pdp(self):
        if not self.pdp_active():
            self.at.command(b"AT+QIACT=%d" % _CONTEXT, timeout_ms=150000)

    def open_tcp(self, host, port, timeout_ms=30000, conn_id=0):
        self.attach()
        err = self._open(host, port, timeout_ms, conn_id)
        if err == _ID_IN_USE:  # a board reset left the modem's connection behind: close it, then connect
            self.close_quietly(conn_id)
            err = self._open(host, port, timeout_ms, conn_id)
        if err != b"0":  # the manual's advice: close the id of a connect that failed or never reported
            self.close_quietly(conn_id)
            detail = "no +QIOPEN within %d ms" % timeout_ms if err is None else "+QIOPEN error %s" % err.decode()
            raise self.open_failed("timeout" if err is None else _OPEN_ERRORS.get(err), host, port, detail)
        return self.stream(conn_id, host, port, timeout_ms)

    def _open(self, host, port, timeout_ms, conn_id):
        """The +QIOPEN error code of a connect (b"0": connected), None if none came in time."""
        self.at.command(b'AT+QIOPEN=%d,%d,"TCP","%s",%d,0,0' % (_CONTEXT, conn_id, host.encode(), port))
        try:
            return self.at.wait_urc(b"+QIOPEN:", timeout_ms).split(b",")[-1].strip()
        except ATTimeout:
            return None

    def send(self, conn_id, data, timeout_ms):
        self.at.command(b"AT+QISEND=%d,%d" % (conn_id, len(data)), data=data, timeout_ms=timeout_ms)

    def recv(self, conn_id, dest):
        self.waiting.discard(conn_id)
        dest = memoryview(dest)[:self.RECV_MAX]
        return self.at.command(b"AT+QIRD=%d,%d" % (conn_id, len(dest)), b"+QIRD:", payload=dest)

    def close(self, conn_id):
        self.at.command(b"AT+QICLOSE=%d" % conn_id, timeout_ms=10000)
