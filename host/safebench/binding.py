"""The operator's side of a board's binding to its SIM (docs/binding.md).

The board keeps a record, signed by its SIM, of the SIM it belongs to and of the operator key that may move it
to another (firmware `core/binding.py`). The first binding names that key; every later one is authorised by a
signature of it over the board, the new SIM's identity and the record's next generation, which the board has
its SIM check. The key is the operator's, kept in the state folder, apart from the CA's: it can move boards
between SIMs, not issue certificates.
"""

import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

from .errors import ProvisionError, UnreadableFileError

KEY_FILE = Path("operator") / "binding-key.pem"
AUTHORIZATION_CONTEXT = "safebench bind/1"  # as the firmware's binding.AUTHORIZATION_CONTEXT


def operator_key(state):
    """The operator's binding key of the state folder, made (mode 0600) the first time."""
    path = Path(state) / KEY_FILE
    if path.exists():
        try:
            return serialization.load_pem_private_key(path.read_bytes(), None)
        except ValueError as e:
            raise UnreadableFileError(f"{path} is no PEM private key: {e}") from None
    key = ec.generate_private_key(ec.SECP256R1())
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return key


def public_point(key):
    """The key's public half as the board takes it: an uncompressed point, hex."""
    return key.public_key().public_bytes(serialization.Encoding.X962,
                                         serialization.PublicFormat.UncompressedPoint).hex().upper()


def authorization(key, board, iccid, kid, generation):
    """The operator's signature (r||s, hex) that lets `board` be bound to the SIM (iccid, kid) as `generation`."""
    text = "|".join((AUTHORIZATION_CONTEXT, board, iccid, kid, str(generation))).encode()
    der = key.sign(hashlib.sha256(text).digest(), ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    r, s = utils.decode_dss_signature(der)
    return (r.to_bytes(32, "big") + s.to_bytes(32, "big")).hex().upper()


def bind_board(device, key, move=False):
    """Bind the board to the SIM in it: the first time naming `key` as its operator's, later (`move`: the
    operator moved a SIM) authorised by it. A board bound to this SIM is left as it is; one bound to another SIM
    is moved only with `move`. Returns the board's binding.status after."""
    status = device.call("binding.status")
    bound, sim, state = status.get("bound"), status.get("sim"), status["state"]
    if state == "unbound":
        return device.call("bind", owner=public_point(key))
    if state == "bound":
        return status  # to this SIM already (its operator key may be another's: it is left as it is)
    if not bound or not sim:
        raise ProvisionError(f"board {status['board']} cannot be bound: {status.get('reason') or 'no SIM in it'}")
    if not move:
        raise ProvisionError(f"board {status['board']} is bound to SIM {bound['iccid']} (kid {bound['kid'][:16]}...), "
                             f"and SIM {sim['iccid']} is in it: if you put it there, `safebench bind` binds the "
                             "board to it")
    return device.call("bind", authorization=authorization(key, status["board"], sim["iccid"], sim["kid"],
                                                           bound["generation"] + 1))
