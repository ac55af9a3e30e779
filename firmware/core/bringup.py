# The modem's bring-up for a data connection, stage by stage (docs/protocol.md, `modem.status`):
#   at            the modem answers (Modem.ready)
#   sim           the SIM is ready (AT+CPIN?)
#   registration  the network has registered it within a deadline (AT+CEREG? for LTE, AT+CREG? for 2G/3G:
#                 stat 1 home or 5 roaming, 3GPP TS 27.007 10.1.22 and 7.2)
#   pdp           the APN is set (network_settings) and the sockets' context active: by the socket drivers'
#                 configure_pdp / activate_pdp / pdp_active, or 27.007 +CGDCONT on a generic modem
# Sockets run it before they connect (SocketModem.attach); the SIM's methods never pay for it.
import time

from atchannel import ATError, ATTimeout

REGISTERED = (1, 5)
REG_TEXT = {0: "not registered, not searching", 1: "registered, home network", 2: "searching",
            3: "registration denied", 4: "unknown", 5: "registered, roaming"}
_REG_COMMANDS = ((b"AT+CEREG?", b"+CEREG:"), (b"AT+CREG?", b"+CREG:"))
_POLL_MS = 500


class BringUpError(ATError):
    """The bring-up stopped at `stage` ("sim", "registration" or "pdp"; no AT answer is an ATTimeout)."""

    def __init__(self, stage, message, cme=None):
        super().__init__("modem bring-up, %s: %s" % (stage, message))
        self.stage = stage
        self.data = {"stage": stage, "cme": cme}


def bring_up(modem, timeout_ms=None):
    """Make `modem` ready for a data connection; waits up to `timeout_ms` (default: the settings') for
    registration. Done once per boot, but for the context, which the network may have dropped."""
    modem.ready()
    if not modem.attached:
        settings = _settings()
        _stage("sim", lambda: _sim_ready(modem))
        if settings["apn"]:  # before the wait: an LTE attach uses it
            configure = getattr(modem, "configure_pdp", None)
            _stage("pdp", lambda: configure(settings) if configure else define_context(modem, settings))
        wait_ms = settings["registration_ms"] if timeout_ms is None else timeout_ms
        _stage("registration", lambda: wait_registered(modem, wait_ms))
        modem.attached = True
    if hasattr(modem, "activate_pdp"):
        try:
            _stage("pdp", modem.activate_pdp)
        except ATError:
            modem.attached = False  # registration may be what was lost: wait for it again next time
            raise


def status(modem, attach=False, timeout_ms=None):
    """Each stage of the bring-up as it stands (carried out first with `attach`), the APN and the warnings."""
    if attach:
        bring_up(modem, timeout_ms)
    apn = _settings()["apn"]
    modem.ready()
    try:
        sim = sim_state(modem)
    except ATTimeout:
        raise
    except ATError as e:
        sim = str(e)
    stat, via = registration(modem)
    pdp = modem.pdp_active() if hasattr(modem, "pdp_active") else None
    return {"stages": {"at": "ok", "sim": "ok" if sim == "READY" else sim,
                       "registration": "ok" if stat in REGISTERED else REG_TEXT.get(stat, "unknown"),
                       "pdp": None if pdp is None else "ok" if pdp else "inactive"},
            "registration": {"stat": stat, "state": REG_TEXT.get(stat, "unknown"), "via": via},
            "apn": apn or None, "attached": modem.attached, "warnings": modem.warnings}


def sim_state(modem):
    """"READY", or what the SIM waits for (e.g. "SIM PIN"); CMEError when it cannot be reached (10: not inserted)."""
    lines = modem.at.command(b"AT+CPIN?", b"+CPIN:")
    return lines[0][6:].strip().decode() if lines else "unknown"


def registration(modem):
    """(stat, "CEREG" or "CREG") of the network registration; (None, None) if the modem reports none."""
    found = (None, None)
    for cmd, prefix in _REG_COMMANDS:
        try:
            lines = modem.at.command(cmd, prefix)
        except ATTimeout:
            raise
        except ATError:
            continue  # a modem without LTE has no +CEREG
        fields = lines[0][len(prefix):].split(b",") if lines else ()
        try:
            stat = int(fields[1] if len(fields) > 1 else fields[0])  # read form: <n>,<stat>[,...]
        except (IndexError, ValueError):
            continue
        if stat in REGISTERED:
            return stat, prefix[1:-1].decode()
        if found[0] is None:
            found = (stat, prefix[1:-1].decode())
    return found


def wait_registered(modem, timeout_ms):
    deadline = time.ticks_add(time.ticks_ms(), timeout_ms)
    while True:
        stat, via = registration(modem)
        if stat in REGISTERED:
            return
        if time.ticks_diff(deadline, time.ticks_ms()) <= 0:
            raise BringUpError("registration", "not registered within %d ms (%s: %s)"
                               % (timeout_ms, via or "no CEREG/CREG", REG_TEXT.get(stat, "unknown")))
        time.sleep_ms(_POLL_MS)


def define_context(modem, settings):
    """The APN of the context the network attach uses (27.007 +CGDCONT)."""
    modem.at.command(b'AT+CGDCONT=1,"IP","%s"' % settings["apn"].encode())


def _settings():
    import network_settings

    try:
        return network_settings.load()
    except ValueError as e:  # a board definition or network.json the APN cannot come from
        raise BringUpError("pdp", str(e)) from None


def _sim_ready(modem):
    state = sim_state(modem)
    if state != "READY":
        raise BringUpError("sim", "the SIM is not ready (+CPIN: %s)" % state)


def _stage(stage, fn):
    """fn(), its modem errors named by `stage`."""
    try:
        fn()
    except BringUpError:
        raise
    except ATTimeout as e:
        timeout = ATTimeout("%s: %s" % (stage, e))
        timeout.data = {"stage": stage}
        raise timeout from None
    except ATError as e:
        raise BringUpError(stage, str(e), getattr(e, "cme", None)) from None
