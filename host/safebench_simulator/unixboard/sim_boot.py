# Simulated board start-up (MicroPython, unix port): run at every VM start by the board supervisor.
# It makes the flash folder the board's '/', then runs boot.py and main.py the way a board's
# firmware does, so that `-i` then drops into the REPL as a board does after main.py returns.
import os
import sys

import machine  # noqa: F401  the shim: imported before '/' is remounted, while the host paths still resolve
import vfs

vfs.umount("/")
vfs.mount(vfs.VfsPosix(os.getenv("SAFEBENCH_FLASH")), "/")
os.chdir("/")
sys.path[:] = ["", ".frozen", "/lib"]


def _run(name):
    try:
        os.stat(name)
    except OSError:
        return
    try:
        execfile(name, {"__name__": "__main__"})  # tracebacks name the file, as a board's do
    except KeyboardInterrupt as e:
        sys.print_exception(e)
    except Exception as e:  # a board prints the traceback and carries on to the REPL
        sys.print_exception(e)


_run("boot.py")
if os.getenv("SAFEBENCH_BOOT") != "raw":
    _run("main.py")
del _run
