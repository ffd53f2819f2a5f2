"""A WSGI application (or middleware) over a :class:`~pdwebhook.Receiver` or a durable
:class:`~pdwebhook.Intake`.

    import pdwebhook, pdwebhook.wsgi
    receiver = pdwebhook.Receiver(credentials=[("pipedrive", "s3cret")])
    app = pdwebhook.wsgi.App(receiver)                     # gunicorn mod:app
    flask_app.wsgi_app = pdwebhook.wsgi.App(receiver, flask_app.wsgi_app,
                                            path="/pipedrive")   # as a middleware

Per request: the head is checked first (method, media type, ``Content-Length`` against
``max_body``, credentials); a refused request is answered (405, 415, 413, 401) **without
its body being read**. Then the body is read (at most ``max_body`` + 1 bytes) and the
receiver decides: with a Receiver the handlers run inside the request, on the server's
thread; with an Intake the request waits (its thread blocks) until the delivery is
durable in the journal, and the handlers run later on the intake's worker threads.

The peer address (``REMOTE_ADDR``) is not part of the C request (``pdw_request`` has no
peer member): the adapter keeps it, on ``response.peer``, in its log lines (logger
``pdwebhook.http``) and as the second argument of ``on_response(response, peer)``.
"""
from ._http import durable, finished, path_matches, status_line

__all__ = ["App", "Middleware"]


def _headers(environ):
    out = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            out.append((key[5:].replace("_", "-").title(), value))
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value != "":
            out.append((key.replace("_", "-").title(), value))
    return out


def _not_found(start_response):
    body = b"not found\n"
    start_response("404 Not Found", [("Content-Type", "text/plain"),
                                     ("Content-Length", str(len(body)))])
    return [body]


class App:
    """``App(target, app=None, *, path=None, on_response=None)``.

    ``target``: a Receiver or an Intake. ``app``: a WSGI app for every other request
    (then this is a middleware); without it other paths get 404. ``path``: the path the
    webhook is served on (None: every path). ``on_response(response, peer)``: told of
    every answer (the :class:`~pdwebhook.Response`, with ``errors`` of the handlers that
    raised in synchronous mode).
    """

    def __init__(self, target, app=None, *, path=None, on_response=None):
        self.durable = durable(target)
        self.target = target
        self.app = app
        self.path = path
        self.on_response = on_response

    def _body(self, environ, max_body):
        stream = environ.get("wsgi.input")
        if stream is None:
            return b""
        length = environ.get("CONTENT_LENGTH") or ""
        try:
            n = int(length)
        except ValueError:
            n = -1
        if n >= 0:
            # The head passed, so n <= max_body; a short read is the receiver's 400.
            return stream.read(n) if n else b""
        if environ.get("wsgi.input_terminated") or \
                "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            return stream.read(max_body + 1)   # more than max_body: the receiver's 413
        return b""

    def __call__(self, environ, start_response):
        if not path_matches(environ.get("PATH_INFO"), self.path):
            if self.app is not None:
                return self.app(environ, start_response)
            return _not_found(start_response)
        method = environ.get("REQUEST_METHOD", "GET")
        headers = _headers(environ)
        query = environ.get("QUERY_STRING") or None
        peer = environ.get("REMOTE_ADDR")
        t = self.target
        if self.durable:
            pending, response = t.begin(method, headers, query)
            if pending is not None:
                try:
                    body = self._body(environ, t.max_body)
                except BaseException:
                    pending.close()
                    raise
                response = t.finish(pending, body)
        else:
            response = t.check_head(method, headers, query)
            if response is None:
                response = t.handle(method, headers, self._body(environ, t.max_body), query)
        finished(response, peer, self.on_response)
        status, out_headers, body = response
        start_response(status_line(status),
                       list(out_headers) + [("Content-Length", str(len(body)))])
        return [body]


#: The same class, for code that reads better as ``Middleware(receiver, app, path=...)``.
Middleware = App
