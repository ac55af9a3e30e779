# Test vectors kept next to the tests (firmware/tests/vectors/*.txt): records of "name = value"
# lines separated by blank lines, '#' comments. Values are hex, except `result` (text, e.g. P or F)
# and `tlen` (decimal).
from binascii import unhexlify

_TEXT = ("result",)
_NUMBER = ("tlen",)


def _dir():
    here = __file__.rsplit("/", 1)
    return (here[0] if len(here) == 2 else ".") + "/vectors/"


def load(name):
    records, current = [], {}
    with open(_dir() + name) as f:
        for line in f:
            line = line.strip()
            if line.startswith("#"):
                continue
            if not line:
                if current:
                    records.append(current)
                    current = {}
                continue
            key, _, value = line.partition("=")
            key, value = key.strip(), value.strip()
            current[key] = value if key in _TEXT else int(value) if key in _NUMBER else unhexlify(value)
    if current:
        records.append(current)
    return records
