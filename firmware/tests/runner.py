# Runs every test_* function of the firmware test modules on the MicroPython unix port.
# Usage: micropython runner.py mpy_test_apdu [mpy_test_jsonrpc ...]; prints one line per test and exits 1 on failure.
import sys

failed = 0
for name in sys.argv[1:]:
    mod = __import__(name)
    for attr in sorted(dir(mod)):
        if attr.startswith("test_"):
            try:
                getattr(mod, attr)()
                print("PASS", name, attr)
            except Exception as e:
                failed += 1
                print("FAIL", name, attr)
                sys.print_exception(e)
sys.exit(1 if failed else 0)
