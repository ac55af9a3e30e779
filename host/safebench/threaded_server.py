"""An http.server serving in a thread of its own, for the rig's services (the dashboard, the EST server)."""

import threading


class ThreadedServer:
    """`_server` (an http.server), served from `start()` until `stop()`; a context manager that does both."""

    _server = None
    thread_name = "server"

    def start(self):
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name=self.thread_name)
        self._thread.start()
        return self

    def stop(self):
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
