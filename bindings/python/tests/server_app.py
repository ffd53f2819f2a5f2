"""The app the server tests run under gunicorn (``server_app:wsgi``) and uvicorn
(``server_app:asgi``), configured by the environment:

- PDW_APP_SPOOL: a journal directory: durable mode (pdwebhook.Intake); unset: a Receiver.
- PDW_APP_LOG: every handled event appends "<delivery key> <name> <entity id> <thread>" here, fsync'ed.
- PDW_APP_SLOW_MS: each handler call sleeps this long first (durable kill test).
- PDW_APP_MAX_BODY: the receiver's max_body.

A delivery whose entity id is 424242 makes its handler raise RuntimeError("boom-424242").
"""
import os
import sys
import threading
import time

import pdwebhook
import pdwebhook.asgi
import pdwebhook.wsgi

USER, PASSWORD = "pipedrive", "s3cret"
SPOOL = os.environ.get("PDW_APP_SPOOL")
LOG = os.environ.get("PDW_APP_LOG")
SLOW = int(os.environ.get("PDW_APP_SLOW_MS") or 0) / 1000.0
MAX_BODY = int(os.environ.get("PDW_APP_MAX_BODY") or 0)

_log_lock = threading.Lock()


def record(event):
    line = "%s\t%s\t%s\t%s\n" % (event.delivery_key, event.name, event.entity_id,
                                threading.current_thread().name)
    if LOG:
        with _log_lock:
            fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode())
                os.fsync(fd)
            finally:
                os.close(fd)


def every(event):
    if SLOW:
        time.sleep(SLOW)
    if event.entity_id == "424242":
        raise RuntimeError("boom-424242")
    record(event)


if SPOOL:
    target = pdwebhook.Intake(SPOOL, [(USER, PASSWORD)], max_body=MAX_BODY,
                              backoff_base_ms=50, backoff_max_ms=200, max_attempts=3)
    target.on("*.*", every)
    target.start()
    print("pdwebhook test app: durable, %d recovered from %s" % (target.recovered, SPOOL),
          file=sys.stderr, flush=True)
else:
    target = pdwebhook.Receiver([(USER, PASSWORD)], max_body=MAX_BODY)
    target.on("*.*", every)
    print("pdwebhook test app: receiver", file=sys.stderr, flush=True)

wsgi = pdwebhook.wsgi.App(target)
asgi = pdwebhook.asgi.App(target)
