"""Running an outside tool (mpremote, esptool) line by line: each line of its output as it comes, a
deadline, and no process left holding the port when it is stuck or the user presses Ctrl-C."""

import os
import signal
import subprocess
import threading


class Finished:
    """How the tool ended: `returncode`, `lines` (stdout and stderr, in order), `timed_out`."""

    def __init__(self, returncode, lines):
        self.returncode, self.lines = returncode, lines
        self.timed_out = returncode == -signal.SIGKILL


def run(argv, on_line, timeout, cwd=None, env=None):
    """Run `argv`, calling `on_line(line)` at each line it prints; a Finished once it has ended."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))  # each line as it happens, not at the end
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            stdin=subprocess.DEVNULL)
    watchdog = threading.Timer(timeout, proc.kill)  # a tool stuck without a word still ends
    watchdog.start()
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            on_line(lines[-1])
        proc.wait()
    finally:
        watchdog.cancel()
        if proc.poll() is None:  # interrupted: do not leave the tool holding the port
            proc.kill()
            proc.wait()
        proc.stdout.close()
    return Finished(proc.returncode, lines)
