"""PDP context settings of the simulated modem: the APN (and credentials) a module keeps per context.

Every dialect has 27.007's ``AT+CGDCONT=<cid>[,"<PDP_type>"[,"<APN>"]]`` (``AT+CGDCONT=<cid>`` alone
deletes the context; ``?`` lists them). Quectel's ``AT+QICSGP=<ctx>,<type>,"<APN>"[,"<user>","<pass>"
[,<auth>]]`` (type 1 IPv4, 2 IPv6, 3 IPv4v6) sets the same contexts, and ``AT+QICSGP=<ctx>`` answers
``+QICSGP: <type>,"<APN>","<user>","<pass>",<auth>``. SIMCom's ``AT+CNCFG=<pdpidx>,<ip_type>[,"<APN>"
[,"<user>","<pass>"[,<auth>]]]`` sets the app-network contexts 0-3 that ``AT+CNACT`` brings up (ip_type
0 dual, 1 IPv4, 2 IPv6); ``?`` lists all four. The settings survive a reboot, as in the modules' NVM.

Simplification: the simulated network takes any APN, so the settings are only kept and reported.
"""

from __future__ import annotations

from . import at
from .at import OK, AtError, CmeError, Handler, Reply, integer, split_args, string

PDP_TYPES = ("IP", "IPV6", "IPV4V6", "NON-IP")
QUECTEL_TYPES = {1: "IP", 2: "IPV6", 3: "IPV4V6"}
SIMCOM_TYPES = {0: "IPV4V6", 1: "IP", 2: "IPV6"}
CONTEXTS = range(1, 17)
APP_CONTEXTS = range(0, 4)


class PdpSettings:
    """The contexts' settings: ``contexts`` (CGDCONT and QICSGP) and ``app_contexts`` (SIMCom CNCFG)."""

    def __init__(self) -> None:
        self.contexts: dict[int, dict] = {}
        self.app_contexts: dict[int, dict] = {}

    def commands(self, names: tuple[str, ...]) -> dict[str, Handler]:
        """The handlers of CGDCONT and of the dialect's own commands among ``names``."""
        own = {"QICSGP": self._qicsgp, "CNCFG": self._cncfg}
        return {"CGDCONT": self._cgdcont, **{name: own[name] for name in names}}

    def status(self) -> dict:
        return {"contexts": {str(k): v for k, v in sorted(self.contexts.items())},
                "app_contexts": {str(k): v for k, v in sorted(self.app_contexts.items())}}

    def _cgdcont(self, form: str, args: str) -> Reply:
        if form == "test":
            return [f'+CGDCONT: ({CONTEXTS.start}-{CONTEXTS.stop - 1}),"{t}",,,(0-2),(0-4)' for t in PDP_TYPES], OK
        if form == "read":
            return [f'+CGDCONT: {cid},"{c["type"]}","{c["apn"]}","0.0.0.0",0,0'
                    for cid, c in sorted(self.contexts.items())], OK
        if form != "set":
            raise AtError(form)
        params = split_args(args)
        cid = _number(params[0], CONTEXTS)
        if len(params) == 1:
            self.contexts.pop(cid, None)
            return [], OK
        kind = string(params[1]).upper()
        if kind not in PDP_TYPES:
            raise CmeError(at.INCORRECT_PARAMETERS)
        old = self.contexts.get(cid, {})
        self.contexts[cid] = {**_context(old), "type": kind, "apn": string(params[2]) if len(params) > 2 else ""}
        return [], OK

    def _qicsgp(self, form: str, args: str) -> Reply:
        if form == "test":
            return ['+QICSGP: (1-16),(1-3),<APN>,<username>,<password>,(0-3)'], OK
        if form != "set":
            raise AtError(form)
        params = split_args(args)
        cid = _number(params[0], CONTEXTS)
        if len(params) == 1:
            c = _context(self.contexts.get(cid, {}))
            kind = {v: k for k, v in QUECTEL_TYPES.items()}.get(c["type"], 1)
            return [f'+QICSGP: {kind},"{c["apn"]}","{c["user"]}","{c["password"]}",{c["auth"]}'], OK
        self.contexts[cid] = _credentials(params, QUECTEL_TYPES)
        return [], OK

    def _cncfg(self, form: str, args: str) -> Reply:
        if form == "test":
            return ['+CNCFG: (0-3),(0-2),,,,(0-3)'], OK
        if form == "read":
            lines = []
            for idx in APP_CONTEXTS:
                c = _context(self.app_contexts.get(idx, {}))
                kind = {v: k for k, v in SIMCOM_TYPES.items()}.get(c["type"], 0)
                lines.append(f'+CNCFG: {idx},{kind},"{c["apn"]}","{c["user"]}","{c["password"]}",{c["auth"]}')
            return lines, OK
        if form != "set":
            raise AtError(form)
        params = split_args(args)
        if len(params) < 2:
            raise AtError("too few parameters")
        self.app_contexts[_number(params[0], APP_CONTEXTS)] = _credentials(params, SIMCOM_TYPES)
        return [], OK


def _number(param: str, allowed: range) -> int:
    try:
        return integer(param, allowed.start, allowed.stop - 1)
    except AtError:
        raise CmeError(at.INCORRECT_PARAMETERS) from None


def _context(old: dict) -> dict:
    return {"type": "IP", "apn": "", "user": "", "password": "", "auth": 0, **old}


def _credentials(params: list[str], types: dict[int, str]) -> dict:
    """<id>,<type>[,"<APN>"[,"<user>","<pass>"[,<auth>]]] of QICSGP and CNCFG."""
    if len(params) > 6 or len(params) == 4:
        raise AtError("wrong number of parameters")
    kind = types.get(_number(params[1], range(0, 4)))
    if kind is None:
        raise CmeError(at.INCORRECT_PARAMETERS)
    apn, user, password = (string(params[i]) if len(params) > i else "" for i in (2, 3, 4))
    auth = _number(params[5], range(0, 4)) if len(params) > 5 else 0
    return {"type": kind, "apn": apn, "user": user, "password": password, "auth": auth}
