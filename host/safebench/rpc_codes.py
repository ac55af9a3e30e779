"""The error codes of the firmware's command protocol, read from their one home, the firmware's
`core/rpc_codes.py` (docs/protocol.md), as data: no firmware code runs on the host.

Each name of that file is an attribute here (`rpc_codes.E_TLS == -32005`); `CODES` maps names to codes.
"""

import ast

from . import FIRMWARE_DIR

SOURCE = FIRMWARE_DIR / "core" / "rpc_codes.py"


def read(path=SOURCE):
    """{name: code} of a file of `NAME = -32001` lines; anything else (but comments) is refused."""
    codes = {}
    for node in ast.parse(path.read_text(), str(path)).body:
        plain = isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
        code = _literal(node.value) if plain else None
        if type(code) is not int:
            raise ValueError(f"{path}:{node.lineno}: not a `NAME = <integer>` line")
        codes[node.targets[0].id] = code
    return codes


def _literal(expr):
    try:
        return ast.literal_eval(expr)
    except ValueError:
        return None


CODES = read()
globals().update(CODES)
