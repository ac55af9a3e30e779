"""Keys in an HSM behind PKCS#11: SoftHSM2 (Debian softhsm2) by default, any PKCS#11 module by its path.

A CA key is generated in the token, sensitive and not extractable, and never leaves it: `TokenKey` is a
cryptography EC private key whose `sign` asks the token (CKM_ECDSA over the SHA-256 digest made here), so
the x509 builders of `cryptography` sign certificates and CRLs with it as with a key in memory.

SoftHSM2 reads its configuration (where its tokens live) once per process, from SOFTHSM2_CONF:
`softhsm_token` writes one for a folder and points the process at it.
"""

import hashlib
import os
import shutil
import subprocess
import threading
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

from .errors import HsmError

SOFTHSM_MODULES = ("/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
                   "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so")
_CONF = "softhsm2.conf"


def softhsm_module():
    """The SoftHSM2 PKCS#11 module's path, or None when it is not installed."""
    return next((m for m in SOFTHSM_MODULES if Path(m).exists()), None)


def softhsm_token(folder, label, pin):
    """A SoftHSM2 token `label` with user PIN `pin` whose files live in `folder` (made the first time); points this
    process's SoftHSM2 at `folder`. Returns the module's path."""
    module, util = softhsm_module(), shutil.which("softhsm2-util")
    if module is None or util is None:
        raise HsmError("SoftHSM2 is not installed (Debian package softhsm2; `make test` installs it)")
    folder = Path(folder).absolute()
    conf = folder / _CONF
    if not conf.exists():
        (folder / "tokens").mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
        conf.write_text(f"directories.tokendir = {folder / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    current = os.environ.get("SOFTHSM2_CONF")
    if current and Path(current) != conf and _loaded:
        raise HsmError(f"this process's SoftHSM2 already reads {current}: one token folder per process")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    listed = subprocess.run([util, "--show-slots"], capture_output=True, text=True, env=os.environ).stdout
    labels = [line.split(":", 1)[1].strip() for line in listed.splitlines() if line.strip().startswith("Label:")]
    if label not in labels:
        done = subprocess.run([util, "--init-token", "--free", "--label", label, "--pin", pin, "--so-pin",
                               os.urandom(8).hex()], capture_output=True, text=True, env=os.environ)
        if done.returncode:
            raise HsmError(f"softhsm2-util could not make the token {label} in {folder}: {done.stderr.strip()}")
    return module


_loaded = {}  # module path -> pkcs11.lib: a module is initialised once per process
_sessions = {}  # (module, token label) -> its logged-in session: PKCS#11 logs an application in once
_lock = threading.RLock()


def _session(module, token_label, pin):
    import pkcs11

    with _lock:
        key = (module, token_label)
        if key not in _sessions:
            try:
                _sessions[key] = _lib(module).get_token(token_label=token_label).open(user_pin=pin, rw=True)
            except pkcs11.PKCS11Error as e:
                raise HsmError(f"cannot open the token {token_label!r} of {module}: {type(e).__name__}") from None
        return _sessions[key]


def _lib(module):
    import pkcs11

    with _lock:
        if module not in _loaded:
            try:
                _loaded[module] = pkcs11.lib(module)
            except (RuntimeError, OSError, pkcs11.PKCS11Error) as e:
                raise HsmError(f"cannot load the PKCS#11 module {module}: {e}") from None
        return _loaded[module]


class TokenKey(ec.EllipticCurvePrivateKey):
    """A P-256 private key in a PKCS#11 token, used through the process's logged-in session with it."""

    curve = ec.SECP256R1()
    key_size = 256

    def __init__(self, session, private, public_key):
        self._session, self._private, self._public = session, private, public_key
        self._lock = _lock  # one operation at a time on the session

    @classmethod
    def open(cls, module, token_label, pin, key_label, create=False):
        """The key `key_label` of the token; with `create`, generated in the token first if it has none
        (sensitive, not extractable)."""
        import pkcs11
        from pkcs11 import Attribute, KeyType, ObjectClass
        from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters

        session = _session(module, token_label, pin)
        try:
            found = list(session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.LABEL: key_label}))
            if found:
                private = found[0]
                public = session.get_key(ObjectClass.PUBLIC_KEY, KeyType.EC, label=key_label)
            elif create:
                params = session.create_domain_parameters(
                    KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")}, local=True)
                public, private = params.generate_keypair(
                    store=True, label=key_label,
                    private_template={Attribute.EXTRACTABLE: False, Attribute.SENSITIVE: True, Attribute.SIGN: True})
            else:
                raise HsmError(f"the token {token_label!r} has no key {key_label!r}")
            return cls(session, private, serialization.load_der_public_key(encode_ec_public_key(public)))
        except pkcs11.PKCS11Error as e:
            raise HsmError(f"the token {token_label!r} refused: {type(e).__name__}") from None

    @property
    def extractable(self) -> bool:
        from pkcs11 import Attribute

        with self._lock:
            return bool(self._private[Attribute.EXTRACTABLE]) or not self._private[Attribute.SENSITIVE]

    # ---- cryptography's EllipticCurvePrivateKey --------------------------------------------------------------

    def public_key(self):
        return self._public

    def sign(self, data, signature_algorithm):
        import pkcs11
        from pkcs11 import Mechanism

        if not isinstance(signature_algorithm, ec.ECDSA) or signature_algorithm.algorithm.name != "sha256":
            raise HsmError("the token signs ECDSA with SHA-256 only")
        try:
            with self._lock:
                raw = self._private.sign(hashlib.sha256(data).digest(), mechanism=Mechanism.ECDSA)
        except pkcs11.PKCS11Error as e:
            raise HsmError(f"the token refused to sign: {type(e).__name__}") from None
        return utils.encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))

    def exchange(self, algorithm, peer_public_key):
        raise HsmError("a CA key in the token signs; it does no key exchange")

    def private_numbers(self):
        raise HsmError("the key is not extractable: it never leaves the token")

    def private_bytes(self, encoding, format, encryption_algorithm):
        raise HsmError("the key is not extractable: it never leaves the token")

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def __eq__(self, other):
        return self is other

    __hash__ = object.__hash__
