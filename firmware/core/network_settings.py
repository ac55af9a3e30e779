# The cellular network settings of this board and its SIM: the APN (with its user, password and
# authentication: 0 none, 1 PAP, 2 CHAP, 3 either) and the longest wait for network registration.
# The board definition's values hold (APN = "...", boards/README.md) unless `network.json` on the
# board's flash names others for the SIM it carries, e.g. {"apn": "iot.example"}. No APN: the
# network's default one.
DEFAULTS = {"apn": "", "user": "", "password": "", "auth": 0, "registration_ms": 120000}
_BOARD_NAMES = {"apn": "APN", "user": "APN_USER", "password": "APN_PASSWORD", "auth": "APN_AUTH",
                "registration_ms": "REGISTRATION_MS"}


def load(path="network.json"):
    """The settings: DEFAULTS, then the board definition's, then `path`'s where present."""
    import board

    settings = {name: getattr(board, _BOARD_NAMES[name], value) for name, value in DEFAULTS.items()}
    try:
        with open(path) as f:
            import json

            given = json.load(f)
    except OSError:
        given = {}
    except ValueError:
        raise ValueError("%s is not a JSON object" % path) from None
    if not isinstance(given, dict):
        raise ValueError("%s is not a JSON object" % path)
    settings.update(given)
    for name, value in settings.items():
        default = DEFAULTS.get(name)
        if default is None:
            raise ValueError("%s: no network setting %s (there are %s)" % (path, name, ", ".join(DEFAULTS)))
        if type(value) is not type(default) or '"' in str(value):
            raise ValueError("network setting %s=%r: not a %s without quotes" % (name, value, type(default).__name__))
    return settings
