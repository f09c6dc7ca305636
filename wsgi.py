"""WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi ...`."""

import gc

from webapp import create_app
from webapp.kb.answering import preload

app = create_app()
# The sentence encoder (~115 MB): loaded once here, so that gunicorn's workers (forked
# after this with --preload) share its memory and none loads it on a customer's question.
preload(app)
# What is loaded by now (~160,000 objects) lives as long as the process: keep it out of
# the cyclic collector's full passes, which otherwise walk it all (~50 ms, one request
# stalled) every few thousand requests.
gc.freeze()
