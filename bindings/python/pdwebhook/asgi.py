"""An ASGI application over a :class:`~pdwebhook.Receiver` or a durable
:class:`~pdwebhook.Intake` (uvicorn, hypercorn; mountable in Starlette / FastAPI).

    import pdwebhook, pdwebhook.asgi
    receiver = pdwebhook.Receiver(credentials=[("pipedrive", "s3cret")])
    app = pdwebhook.asgi.App(receiver)                    # uvicorn mod:app
    # Starlette/FastAPI: routes=[Mount("/pipedrive", app=pdwebhook.asgi.App(receiver))]

Per request: the head is checked first; a refused request (405, 415, 413 by its
``Content-Length``, 401) is answered **without its body being read**. Then the body is
received (at most ``max_body`` + 1 bytes) and the receiver decides:

- with a Receiver, the handlers run synchronously: by default in the loop's default
  thread pool (``run_in_thread=True``) so that a slow handler does not stall the event
  loop; ``run_in_thread=False`` runs them on the loop's thread (fast handlers only);
- with an Intake, the request awaits the journal's flush (the loop is free meanwhile:
  the intake's completion callback wakes it with ``call_soon_threadsafe``) and the
  handlers run later on the intake's worker threads. The lifespan protocol starts the
  intake at startup and stops it at shutdown.

The peer (``scope["client"]``) is not part of the C request: the adapter keeps it, on
``response.peer``, in its log lines (logger ``pdwebhook.http``) and as the second
argument of ``on_response(response, peer)``.
"""
import asyncio

from ._http import durable, finished, path_matches

__all__ = ["App"]


def _peer(scope):
    client = scope.get("client")
    return client[0] if client else None


class App:
    """``App(target, app=None, *, path=None, on_response=None, run_in_thread=True)``:
    as :class:`pdwebhook.wsgi.App`, for ASGI 3."""

    def __init__(self, target, app=None, *, path=None, on_response=None,
                 run_in_thread=True):
        self.durable = durable(target)
        self.target = target
        self.app = app
        self.path = path
        self.on_response = on_response
        self.run_in_thread = run_in_thread

    async def _lifespan(self, receive, send):
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    if self.durable:
                        self.target.start()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.durable:
                    await asyncio.get_running_loop().run_in_executor(None, self.target.stop)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _body(self, receive, max_body):
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            if chunk:
                chunks.append(chunk)
                size += len(chunk)
            if size > max_body or not message.get("more_body", False):
                return b"".join(chunks)   # over max_body: the receiver answers 413

    async def __call__(self, scope, receive, send):
        kind = scope["type"]
        if kind == "lifespan" and self.app is None:
            return await self._lifespan(receive, send)
        if kind != "http" or not path_matches(scope.get("path"), self.path):
            if self.app is not None:
                return await self.app(scope, receive, send)
            if kind != "http":
                return None
            body = b"not found\n"
            await send({"type": "http.response.start", "status": 404,
                        "headers": [(b"content-type", b"text/plain"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return None
        method = scope["method"]
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        query = scope.get("query_string") or None
        peer = _peer(scope)
        t = self.target
        if self.durable:
            pending, response = t.begin(method, headers, query)
            if pending is not None:
                body = await self._body(receive, t.max_body)
                if body is None:
                    pending.close()
                    return None
                response = await t.finish_async(pending, body)
        else:
            response = t.check_head(method, headers, query)
            if response is None:
                body = await self._body(receive, t.max_body)
                if body is None:
                    return None
                if self.run_in_thread:
                    response = await asyncio.get_running_loop().run_in_executor(
                        None, t.handle, method, headers, body, query)
                else:
                    response = t.handle(method, headers, body, query)
        finished(response, peer, self.on_response)
        status, out_headers, body = response
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in out_headers]
        raw.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})
        return None
