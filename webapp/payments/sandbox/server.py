"""Development only: the sandbox's gateways answered by a server of their own.

The payment clients call the gateways over HTTP from inside requests (checkout,
`refresh=1`, the order page's poll) and jobs. Served by the app's own workers, such a
call waits for a worker that the calling request itself may be holding: with one
worker it always times out, and with a few, notifies (each waiting for the order row
the refresh holds) fill the others and the server stalls. So the SDKs' calls go to a
threaded server on 127.0.0.1 that belongs to the sandbox, one per app and process
(a forked worker or work horse starts its own), started on first use; it serves only
the sandbox's paths. Pages a person opens (the WeChat Pay scan page, the Alipay
cashier) and the notifies the sandbox sends still use BASE_URL, and the notifies go
out from their own threads (`notify.py`), never from a request.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from typing import Any

from flask import Flask, current_app
from werkzeug.serving import make_server
from werkzeug.wrappers import Response

from webapp.payments.sandbox.common import SANDBOX_PREFIX

_servers: dict[tuple[int, int], str] = {}  # (process id, app id) -> base URL
_lock = threading.Lock()


def _sandbox_paths_only(app: Flask) -> Any:
    def wsgi(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if not environ.get("PATH_INFO", "").startswith(SANDBOX_PREFIX + "/"):
            return Response("Not Found", status=404)(environ, start_response)
        return app(environ, start_response)

    return wsgi


def gateway_base_url() -> str:
    """The base URL of this process's gateway server for the current app."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    key = (os.getpid(), id(app))
    with _lock:
        if key not in _servers:
            server = make_server("127.0.0.1", 0, _sandbox_paths_only(app), threaded=True)
            threading.Thread(
                target=server.serve_forever, name="sandbox-gateways", daemon=True
            ).start()
            _servers[key] = f"http://127.0.0.1:{server.server_port}"
        return _servers[key]
