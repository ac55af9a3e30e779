# SIMCom SIM7080G: ICCID spelling and TCP sockets (the CNACT/CAOPEN application commands).
from atchannel import ATError
from modem_sockets import SocketModem

_PDP = 0


class SimCom(SocketModem):
    ICCID_COMMANDS = ((b"AT+CICCID", b"+ICCID:"),) + SocketModem.ICCID_COMMANDS
    DATA_URC = b"+CADATAIND: "
    CLOSED_URC = b"+CASTATE: "

    def on_urc(self, line):
        if line.startswith(self.CLOSED_URC) and not line.endswith(b",0"):
            return  # +CASTATE: <cid>,1 reports a connection that is up
        super().on_urc(line)

    def attach(self):
        active = self.ready().at.command(b"AT+CNACT?", b"+CNACT:")
        if not any(line[7:].strip().startswith(b"%d,1" % _PDP) for line in active):
            self.at.command(b"AT+CNACT=%d,1" % _PDP, timeout_ms=150000)

    def open_tcp(self, host, port, timeout_ms=30000, conn_id=0):
        self.attach()
        lines = self.at.command(b'AT+CAOPEN=%d,%d,"TCP","%s",%d' % (conn_id, _PDP, host.encode(), port),
                                b"+CAOPEN:", timeout_ms)
        result = lines[-1].split(b",")[-1].strip() if lines else b"?"
        if result != b"0":
            raise ATError("TCP connect to %s:%d failed (+CAOPEN result %s)" % (host, port, result.decode()))
        return self.stream(conn_id, timeout_ms)

    def send(self, conn_id, data):
        self.at.command(b"AT+CASEND=%d,%d" % (conn_id, len(data)), data=data, timeout_ms=10000)

    def recv(self, conn_id, dest):
        self.waiting.discard(conn_id)
        dest = memoryview(dest)[:self.RECV_MAX]
        return self.at.command(b"AT+CARECV=%d,%d" % (conn_id, len(dest)), b"+CARECV:", payload=dest)

    def close(self, conn_id):
        self.at.command(b"AT+CACLOSE=%d" % conn_id, timeout_ms=10000)
