"""WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi ...`."""

import gc

from webapp import create_app

app = create_app()
# What is loaded by now (~160,000 objects) lives as long as the process: keep it out of
# the cyclic collector's full passes, which otherwise walk it all (~50 ms, one request
# stalled) every few thousand requests.
gc.freeze()
