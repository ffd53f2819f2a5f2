"""The durable intake (``pdw_intake``, libpdwebhook-durable) for Python servers.

A delivery is answered 200 only once it is fdatasync'ed in the journal (group commit:
concurrent requests share one flush), and the handlers run afterwards, on the intake's
worker threads, retried with backoff and dead-lettered after the last attempt. This is
what ``pdwebhook serve`` does (docs/DURABILITY.md), with Python handlers.

Threads, and how Python is called back (read this before writing handlers):

- The **handlers** run on the worker's C threads (``threads``, default 4). Each call comes
  through a ctypes callback (``CFUNCTYPE``), which takes the GIL for the duration of the
  call: a handler is ordinary Python on a thread Python did not start. Deliveries of one
  entity are handled one after another, in order; different entities may run at the
  same time (as far as the GIL lets them). A handler that raises is retried.
- The **answer** of a request comes through the intake's completion callback: inside the
  submitting call for what needs no flush (refusals, duplicates), or on the intake's
  committer thread once the flush is over. That callback is also a ctypes callback; it
  only wakes the waiting request (a :class:`threading.Event` for :meth:`Intake.submit`,
  ``loop.call_soon_threadsafe`` for :meth:`Intake.submit_async`), so it holds the GIL
  for microseconds.
- Every ctypes call into the library releases the GIL, so the C threads can always get
  it: nothing here waits for a C thread while holding the GIL.
- The intake's threads must be stopped before the interpreter shuts down (a C thread
  calling into a finalised interpreter would crash it): :meth:`Intake.close` does it,
  and an ``atexit`` hook closes every intake still open. Create the intake in the
  process that serves (after a fork: gunicorn's workers import the app themselves unless
  ``--preload``), one process per spool directory (the journal is locked).
"""

import asyncio
import atexit
import ctypes
import itertools
import logging
import os
import threading
import weakref
from ctypes import byref, c_long, c_void_p
from typing import Any, Callable, Optional, Tuple

from . import _lib
from . import PdwError, Receiver, Response, _bytes

log = logging.getLogger("pdwebhook")

_live = weakref.WeakSet()


@atexit.register
def _close_all():
    for intake in list(_live):
        try:
            intake.close()
        except Exception:  # pragma: no cover - best effort at exit
            pass


class _Waiter:
    __slots__ = ("verdict", "keep", "event", "loop", "future", "response")

    def __init__(self, keep, loop=None):
        self.verdict = _lib.pdw_verdict()
        self.verdict.version = _lib.PDW_VERDICT_VERSION
        self.keep = keep            # the body (and request spans): valid until done
        self.loop = loop
        self.future = loop.create_future() if loop is not None else None
        self.event = threading.Event() if loop is None else None
        self.response = None


def _resolve(future, response):
    if not future.done():
        future.set_result(response)


class Pending:
    """A request whose head the intake accepted (:meth:`Intake.begin`), waiting for its
    body: give it to :meth:`Intake.finish` (or :meth:`Intake.finish_async`), or
    :meth:`close` it when the body never comes."""

    __slots__ = ("_ptr", "_intake")

    def __init__(self, ptr, intake):
        self._ptr = ptr
        self._intake = intake

    def _take(self):
        if self._ptr is None:
            raise ValueError("pdwebhook: this pending request was finished already")
        p, self._ptr = self._ptr, None
        return p

    def close(self):
        """Free it without a body (the client went away). Idempotent."""
        if self._ptr is not None:
            _lib.durable().pdw_intake_pending_free(self._take())

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


class Intake:
    """A durable receiver: ``pdw_intake`` (receiver + journal + worker + group commit).

    ``spool_dir`` is the journal's directory (created 0700); ``None`` keeps deliveries in
    memory only (NOT durable: answered 200 once queued; for tests). ``credentials`` and
    the keyword options of :class:`Receiver` (``max_body``, ``query_token``, ``realm``,
    ``dedup_ttl_ms``, ...; not ``accept``: the intake is the accept hook) set the
    receiver. The worker: ``threads`` (0: 4), ``max_attempts`` (0: 8),
    ``backoff_base_ms`` (0: 1000), ``backoff_max_ms`` (0: 60000), ``dead_letter_path``
    (a JSON-lines file for deliveries given up), ``on_error(code, message)`` (told when
    the journal refuses an append or a flush fails: those requests are answered 503).

    Register handlers with :meth:`on` / :meth:`on_unhandled` (they run on the worker's
    threads, after the answer; one that raises is retried), then :meth:`start` (also done
    by the first request): the deliveries a previous process acknowledged but did not
    hand on are handed on then. Serve with :meth:`submit` (blocks the calling thread
    until the answer is final: WSGI), :meth:`submit_async` (an awaitable: ASGI) or the
    two-step :meth:`begin` / :meth:`finish`, which refuses a request (413 by its
    Content-Length, 401, ...) before its body is read. :meth:`close` at the end.
    """

    def __init__(self, spool_dir: Optional[str], credentials: Any = (), *, threads: int = 0,
                 max_attempts: int = 0, backoff_base_ms: int = 0, backoff_max_ms: int = 0,
                 dead_letter_path: Optional[str] = None,
                 on_error: Optional[Callable[[int, str], None]] = None,
                 **receiver_options: Any) -> None:
        if "accept" in receiver_options:
            raise TypeError("pdwebhook: an Intake is its receiver's accept hook")
        D = _lib.durable()
        self._ptr = None
        self._lock = threading.Lock()
        self._started = False
        self._waiting = {}
        self._ids = itertools.count(1)
        self.recovered = 0
        ropts, keep = Receiver._options(credentials, **receiver_options)
        self._keep = [k for k in keep if isinstance(k, ctypes._CFuncPtr)]
        wopts = _lib.pdw_worker_options()
        rc = D.pdw_worker_options_init(byref(wopts), _lib.PDW_WORKER_OPTIONS_VERSION)
        if rc:
            raise PdwError(rc)
        handle_cb = _lib.pdw_worker_handle_cb(self._handle)
        self._keep.append(handle_cb)
        wopts.handle = handle_cb
        wopts.threads = int(threads)
        wopts.max_attempts = int(max_attempts)
        wopts.backoff_base_ms = int(backoff_base_ms)
        wopts.backoff_max_ms = int(backoff_max_ms)
        wopts.dead_letter_path = (os.fsencode(dead_letter_path)
                                  if dead_letter_path is not None else None)
        iopts = _lib.pdw_intake_options()
        rc = D.pdw_intake_options_init(byref(iopts), _lib.PDW_INTAKE_OPTIONS_VERSION)
        if rc:
            raise PdwError(rc)
        iopts.receiver = ctypes.pointer(ropts)
        iopts.spool_dir = os.fsencode(spool_dir) if spool_dir is not None else None
        iopts.worker = ctypes.pointer(wopts)
        if on_error is not None:
            def error_tramp(code, message, _user, _f=on_error):
                try:
                    _f(int(code), (message or b"").decode("utf-8", "replace"))
                except BaseException:  # never into C
                    log.exception("pdwebhook: the intake's on_error raised")
            ecb = _lib.pdw_intake_error_cb(error_tramp)
            self._keep.append(ecb)
            iopts.on_error = ecb
        self._done_cb = _lib.pdw_intake_done_cb(self._done)
        err = _lib.pdw_error()
        out = c_void_p()
        rc = D.pdw_intake_new(byref(out), byref(iopts), byref(err))
        del keep
        if rc:
            raise PdwError._from(rc, err)
        self._ptr = out.value
        self.receiver = Receiver._borrow(D.pdw_intake_receiver(self._ptr),
                                         receiver_options.get("max_body", 0))
        self.max_body = self.receiver.max_body
        self.spool_dir = spool_dir
        _live.add(self)

    # -- handlers (before start) --
    def on(self, pattern, handler=None, *, changed=None):
        """As :meth:`Receiver.on`; the handler runs on a worker thread, after the answer.
        Register before :meth:`start`."""
        return self.receiver.on(pattern, handler, changed=changed)

    def on_unhandled(self, handler):
        """As :meth:`Receiver.on_unhandled`."""
        return self.receiver.on_unhandled(handler)

    # -- life cycle --
    def _p(self):
        if self._ptr is None:
            raise ValueError("pdwebhook: the intake is closed")
        return self._ptr

    def start(self) -> None:
        """Start the worker and the committer; hand on what the journal holds that was
        not handed on yet (:attr:`recovered` says how many). Idempotent."""
        with self._lock:
            if self._started:
                return
            recovered = c_long(0)
            err = _lib.pdw_error()
            rc = _lib.durable().pdw_intake_start(self._p(), byref(recovered), byref(err))
            if rc:
                raise PdwError._from(rc, err)
            self._started = True
            self.recovered = int(recovered.value)

    def stop(self) -> None:
        """Answer every request waiting for a flush and stop the threads (handlers under
        way finish; queued deliveries stay in the journal for the next start). Requests
        after this are still answered, each flushing for itself. Idempotent."""
        if self._ptr is not None and self._started:
            _lib.durable().pdw_intake_stop(self._ptr)

    def close(self) -> None:
        """Stop, then free the intake (closes the journal). Idempotent; not while a
        request is being submitted."""
        with self._lock:
            if self._ptr is None:
                return
            D = _lib.durable()
            if self._started:
                D.pdw_intake_stop(self._ptr)
            if self.receiver is not None:
                self.receiver.close()
            D.pdw_intake_free(self._ptr)
            self._ptr = None
        _live.discard(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- the worker's handler: a C thread calls it (ctypes takes the GIL) --
    def _handle(self, rec_p, attempt, errbuf, errcap, _user):
        try:
            rec = rec_p.contents
            body = ctypes.string_at(rec.body, rec.body_len) if rec.body else b""
            res = self.receiver.dispatch_body(body)
            if not res.failed:
                return 0
            exc = res.errors[0].exception if res.errors else None
            why = "handler failed: %r" % (exc,)
        except BaseException as exc:  # noqa: B902 - never into C
            why = "%s: %s" % (type(exc).__name__, exc)
        try:
            raw = why.encode("utf-8", "replace")[: max(0, int(errcap) - 1)]
            if errbuf and errcap:
                ctypes.memmove(errbuf, raw, len(raw))
                ctypes.memset(errbuf + len(raw), 0, 1)
        except BaseException:
            pass
        return 1

    # -- completion: inside the call, or on the committer thread --
    def _done(self, verdict_p, user):
        try:
            w = self._waiting.pop(user, None)
            if w is None:
                return
            w.response = Receiver._response(w.verdict)
            w.keep = None
            if w.future is not None:
                try:
                    w.loop.call_soon_threadsafe(_resolve, w.future, w.response)
                except RuntimeError:   # the loop is closed: nobody waits any more
                    pass
            else:
                w.event.set()
        except BaseException:  # pragma: no cover - never into C
            log.exception("pdwebhook: intake completion failed")

    def _call(self, fn, *args, loop=None, keep=None):
        if not self._started:
            self.start()
        w = _Waiter(keep, loop)
        rid = next(self._ids)
        self._waiting[rid] = w      # before the call: the callback may run inside it
        rc = fn(*args, byref(w.verdict), self._done_cb, rid)
        if rc < 0:
            self._waiting.pop(rid, None)
            raise PdwError(rc)
        return w

    def submit(self, method: Any, headers: Any, body: Any, query: Any = None) -> Response:
        """Take one whole request; block until its answer is final (durable, or refused)
        and return the :class:`Response` (``status, headers, body``)."""
        req, keep = Receiver._request(method, headers, body, query)
        w = self._call(_lib.durable().pdw_intake_submit, self._p(), byref(req), keep=keep)
        w.event.wait()
        return w.response

    async def submit_async(self, method: Any, headers: Any, body: Any,
                           query: Any = None) -> Response:
        """:meth:`submit` for asyncio: the event loop is not blocked while the journal
        flushes."""
        req, keep = Receiver._request(method, headers, body, query)
        w = self._call(_lib.durable().pdw_intake_submit, self._p(), byref(req), keep=keep,
                       loop=asyncio.get_running_loop())
        return await w.future

    def begin(self, method: Any, headers: Any,
              query: Any = None) -> Tuple[Optional["Pending"], Optional[Response]]:
        """Check a request's head (method, media type, Content-Length against
        ``max_body``, credentials) before its body is read. Returns ``(pending, None)``
        to read the body and :meth:`finish`, or ``(None, response)`` to send instead."""
        if not self._started:
            self.start()
        req, keep = Receiver._request(method, headers, None, query)
        verdict = _lib.pdw_verdict()
        verdict.version = _lib.PDW_VERDICT_VERSION
        out = c_void_p()
        rc = _lib.durable().pdw_intake_begin(byref(out), self._p(), byref(req), byref(verdict))
        del keep
        if rc == 0:
            return Pending(out.value, self), None
        if rc == _lib.PDW_EINVAL and not verdict.status:
            raise PdwError(rc)
        return None, Receiver._response(verdict)

    def _finish_args(self, pending, body):
        b = _bytes(body if body is not None else b"", "body")
        buf = ctypes.c_char_p(b)
        return (pending._take(), ctypes.cast(buf, c_void_p), len(b)), (b, buf)

    def finish(self, pending: "Pending", body: Any) -> Response:
        """Give a :class:`Pending` its body; block until the answer is final."""
        args, keep = self._finish_args(pending, body)
        w = self._call(_lib.durable().pdw_intake_finish, *args, keep=keep)
        w.event.wait()
        return w.response

    async def finish_async(self, pending: "Pending", body: Any) -> Response:
        """:meth:`finish` for asyncio."""
        args, keep = self._finish_args(pending, body)
        w = self._call(_lib.durable().pdw_intake_finish, *args, keep=keep,
                       loop=asyncio.get_running_loop())
        return await w.future


__all__ = ["Intake", "Pending", "Response"]
