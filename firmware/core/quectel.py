# Quectel BG95/BG96: ICCID spelling and TCP sockets (TCP/IP AT commands manual, "buffer access" mode).
from atchannel import ATError
from modem_sockets import SocketModem

_CONTEXT = 1


class Quectel(SocketModem):
    ICCID_COMMANDS = ((b"AT+QCCID", b"+QCCID:"),) + SocketModem.ICCID_COMMANDS
    DATA_URC = b'+QIURC: "recv",'
    CLOSED_URC = b'+QIURC: "closed",'

    def attach(self):
        """Activate the PDP context unless it is active already."""
        active = self.ready().at.command(b"AT+QIACT?", b"+QIACT:")
        if not any(line[7:].strip().startswith(b"%d," % _CONTEXT) for line in active):
            self.at.command(b"AT+QIACT=%d" % _CONTEXT, timeout_ms=150000)

    def open_tcp(self, host, port, timeout_ms=30000, conn_id=0):
        self.attach()
        self.at.command(b'AT+QIOPEN=%d,%d,"TCP","%s",%d,0,0' % (_CONTEXT, conn_id, host.encode(), port))
        result = self.at.wait_urc(b"+QIOPEN:", timeout_ms)
        err = result.split(b",")[-1].strip()
        if err != b"0":
            raise ATError("TCP connect to %s:%d failed (+QIOPEN error %s)" % (host, port, err.decode()))
        return self.stream(conn_id, timeout_ms)

    def send(self, conn_id, data):
        self.at.command(b"AT+QISEND=%d,%d" % (conn_id, len(data)), data=data, timeout_ms=10000)

    def recv(self, conn_id, dest):
        self.waiting.discard(conn_id)
        dest = memoryview(dest)[:self.RECV_MAX]
        return self.at.command(b"AT+QIRD=%d,%d" % (conn_id, len(dest)), b"+QIRD:", payload=dest)

    def close(self, conn_id):
        self.at.command(b"AT+QICLOSE=%d" % conn_id, timeout_ms=10000)
