"""Bytes an AT exchange puts on the modem UART (ITU-T V.250 framing, 3GPP TS 27.007 result codes).

A command line goes out ended by CR (the firmware sends no LF); a modem with echo on sends the line
and its CR back. Information lines come back as CR LF <line> ... CR LF, the final result as
CR LF <result> CR LF, an unsolicited line as CR LF <line> CR LF, a data prompt as CR LF "> ".
These are the rules the simulated modem follows (safebench_simulator.modem) and real modules document.
"""

CRLF = 2
FINAL = ("OK", "ERROR", "SEND OK", "SEND FAIL")


def is_final(line):
    """True for a line that ends a command's answer."""
    return line in FINAL or line.startswith("+CME ERROR")


def command_bytes(line):
    """Bytes the board sends for one command line."""
    return len(line) + 1


def reply_bytes(info_lines, result):
    """Bytes of an answer: its information lines (framed together), then the final result."""
    info = sum(len(x) for x in info_lines) + CRLF * (len(info_lines) + 1) if info_lines else 0
    return info + len(result) + 2 * CRLF


def urc_bytes(line):
    return len(line) + 2 * CRLF


def csim_command(apdu_len):
    """`AT+CSIM=<2n>,"<hex>"`: the length counts hex characters (TS 27.007 8.17)."""
    return f'AT+CSIM={2 * apdu_len},"{"0" * 2 * apdu_len}"'


def csim_reply(response_len, quoted=True, space=True):
    """`+CSIM: <2m>,"<hex>"` for m response bytes (data and SW1 SW2), in the modem's style."""
    q = '"' if quoted else ""
    return f"+CSIM:{' ' if space else ''}{2 * response_len},{q}{'0' * 2 * response_len}{q}"


def csim_bytes(apdu_len, response_len, quoted=True, space=True):
    """(to modem, from modem) bytes of one APDU through AT+CSIM, echo off."""
    return (command_bytes(csim_command(apdu_len)),
            reply_bytes([csim_reply(response_len, quoted, space)], "OK"))
