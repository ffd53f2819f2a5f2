"""pdwebhook for Python: receive Pipedrive webhooks with libpdwebhook, over ctypes.

No compile step: this package loads the shared library ``libpdwebhook.so.<SOVERSION>``
(see :func:`load`; ``$PDWEBHOOK_LIBRARY`` names it or its directory) and calls its
exported ``pdw_*`` functions. Everything the C receiver does is done by the C receiver:
Basic auth, body checks, both payload versions, dedup of retries, the status policy.

    import pdwebhook

    receiver = pdwebhook.Receiver(credentials=[("pipedrive", "s3cret")])

    @receiver.on("change.deal", changed="stage_id")
    def moved(event):
        print("deal", event.entity_id, "moved to stage", event.data["stage_id"])

    # per request, from any HTTP server:
    status, headers, body = receiver.handle("POST", request_headers, request_body)

Handlers are registered before the first request (the router then freezes). A handler
that raises is a *failed handler*: the exception is logged (logger ``pdwebhook``), kept
in :attr:`Receiver.last_errors` and :attr:`Response.errors`, and the answer follows the
receiver's policy (200 by default, see ``handler_error_status``). It never propagates
into the C library and never crashes the process.
"""

import ctypes
import datetime
import json
import logging
import threading
from collections import namedtuple
from ctypes import byref, c_size_t, c_void_p

from . import _lib
from ._lib import (LIBRARY_ENV, SOVERSION, LibraryNotFound, durable_library_path,
                   library_path, load, search_path)
from ._version import __version__

if int(__version__.split(".")[0]) != SOVERSION:  # pragma: no cover - a packaging mistake
    raise ImportError("pdwebhook %s is not for libpdwebhook.so.%d" % (__version__, SOVERSION))

__all__ = [
    "Receiver", "Event", "Response", "HandlerError", "DispatchResult", "PdwError",
    "load", "library_path", "search_path", "version", "version_number", "strerror",
    "err_name", "err_http_status", "error_codes", "LIBRARY_ENV", "SOVERSION",
    "ACCEPT_DEFERRED", "Intake", "LibraryNotFound", "durable_library_path", "__version__",
]

#: What an ``accept`` hook returns to answer 200 while it settles the delivery's dedup
#: claim itself later, with :meth:`Receiver.confirm` or :meth:`Receiver.release`
#: (``PDW_ACCEPT_DEFERRED``; for hooks that commit asynchronously).
ACCEPT_DEFERRED = _lib.PDW_ACCEPT_DEFERRED

log = logging.getLogger("pdwebhook")


# ---------------------------------------------------------------------------------------
# Library-wide functions
# ---------------------------------------------------------------------------------------
def version():
    """The C library's version at run time, "MAJOR.MINOR.PATCH"."""
    return _lib.lib().pdw_version().decode()


def version_number():
    """The C library's version as 0xMMmmpp."""
    return int(_lib.lib().pdw_version_number())


def strerror(code):
    """The message of a ``PDW_*`` code (never None)."""
    return _lib.lib().pdw_strerror(int(code)).decode()


def err_name(code):
    """The name of a ``PDW_*`` code, e.g. ``"PDW_EJSON"`` (``"PDW_EUNKNOWN"`` if unknown)."""
    return _lib.lib().pdw_err_name(int(code)).decode()


def err_http_status(code):
    """The HTTP status a receiver answers for a code by default."""
    return int(_lib.lib().pdw_err_http_status(int(code)))


def error_codes():
    """Every code the loaded library knows, as ``{"PDW_EJSON": -10, ...}``.

    Read from the library (the table is append-only and dense), so a newer library's
    codes are included.
    """
    codes = {}
    for code in range(0, -1000, -1):
        name = err_name(code)
        if name == "PDW_EUNKNOWN":
            break
        codes[name] = code
    return codes


class PdwError(Exception):
    """A pdwebhook function failed. ``code`` is the ``PDW_E*`` value, ``name`` its name,
    ``detail`` the library's message (never contains a secret), ``offset`` the byte
    offset of a JSON error or -1."""

    def __init__(self, code, detail="", offset=-1):
        self.code = int(code)
        self.name = err_name(self.code)
        self.detail = detail or strerror(self.code)
        self.offset = offset
        super().__init__("%s: %s" % (self.name, self.detail))

    @classmethod
    def _from(cls, rc, err):
        detail = err.message.decode("utf-8", "replace") if err.code else ""
        return cls(rc, detail, err.offset if err.code else -1)


def _bytes(value, what, encoding="utf-8"):
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode(encoding)
    raise TypeError("%s must be str or bytes, not %s" % (what, type(value).__name__))


def _header_bytes(value, what):
    # Servers written in Python (http.server, WSGI) decode header bytes as ISO-8859-1;
    # encoding back the same way gives the bytes that were on the wire. Text that is not
    # Latin-1 can only have been meant as UTF-8.
    if isinstance(value, str):
        try:
            return value.encode("latin-1")
        except UnicodeEncodeError:
            return value.encode("utf-8")
    return _bytes(value, what)


def _text(raw):
    return None if raw is None else raw.decode("utf-8", "replace")


# ---------------------------------------------------------------------------------------
# Event
# ---------------------------------------------------------------------------------------
class Event:
    """One webhook event, v1 or v2, in one vocabulary (see include/pdwebhook/event.h).

    An Event is handed to a handler and is valid **only during that call**: it wraps the
    C event, which the library frees afterwards. Read what you need inside the handler;
    afterwards every property raises RuntimeError. The properties call the C accessors;
    ``payload``, ``data`` and ``previous`` parse the body with :mod:`json` on first use
    (the library already validated it) and are shared by the handlers of one delivery.
    """

    __slots__ = ("_ptr", "_cache", "__weakref__")

    def __init__(self, ptr):
        self._ptr = ptr
        self._cache = {}

    def _p(self):
        if self._ptr is None:
            raise RuntimeError("pdwebhook: an Event is only valid inside its handler; "
                               "copy what you need while it runs")
        return self._ptr

    def _detach(self):
        self._ptr = None
        self._cache.clear()

    def _str(self, fn):
        return _text(fn(self._p()))

    # -- routing fields --
    @property
    def version(self):
        """Payload version: 1 or 2."""
        return int(_lib.lib().pdw_event_version(self._p()))

    @property
    def action(self):
        """Canonical action: "create", "change" or "delete"."""
        return self._str(_lib.lib().pdw_event_action)

    @property
    def delivered_action(self):
        """The action as delivered: "added", "updated", "merged", "deleted", "change", ..."""
        return self._str(_lib.lib().pdw_event_delivered_action)

    @property
    def object(self):
        """The object: "deal", "person", "deal_product", ... (an open list)."""
        return self._str(_lib.lib().pdw_event_object)

    @property
    def name(self):
        """Canonical event name, e.g. "change.deal"."""
        return self._str(_lib.lib().pdw_event_name)

    @property
    def delivered_name(self):
        """The event name as delivered, e.g. "updated.deal"."""
        return self._str(_lib.lib().pdw_event_delivered_name)

    @property
    def entity_id(self):
        """Id of the changed entity (v1 ``meta.id``, v2 ``meta.entity_id``), or None."""
        return self._str(_lib.lib().pdw_event_entity_id)

    @property
    def event_id(self):
        """v2 event id (``meta.id``); None for v1."""
        return self._str(_lib.lib().pdw_event_event_id)

    @property
    def webhook_id(self):
        """``meta.webhook_id`` or None."""
        return self._str(_lib.lib().pdw_event_webhook_id)

    @property
    def company_id(self):
        """``meta.company_id`` or None."""
        return self._str(_lib.lib().pdw_event_company_id)

    @property
    def user_id(self):
        """``meta.user_id`` (who made the change) or None."""
        return self._str(_lib.lib().pdw_event_user_id)

    @property
    def correlation_id(self):
        """``meta.correlation_id`` (v2) or None."""
        return self._str(_lib.lib().pdw_event_correlation_id)

    @property
    def change_source(self):
        """``meta.change_source`` ("app", "api", ...) or None."""
        return self._str(_lib.lib().pdw_event_change_source)

    @property
    def attempt(self):
        """Delivery attempt, 1-based for both versions."""
        return int(_lib.lib().pdw_event_attempt(self._p()))

    @property
    def timestamp_ms(self):
        """When the change happened, ms since the Unix epoch (UTC), or None."""
        ms = int(_lib.lib().pdw_event_timestamp_ms(self._p()))
        return None if ms < 0 else ms

    @property
    def timestamp(self):
        """:attr:`timestamp_ms` as an aware UTC datetime, or None."""
        ms = self.timestamp_ms
        if ms is None:
            return None
        return (datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
                + datetime.timedelta(milliseconds=ms))

    @property
    def is_bulk(self):
        """True when the change was part of a bulk edit."""
        return bool(_lib.lib().pdw_event_is_bulk(self._p()))

    @property
    def is_merge(self):
        """True for a merge (v1 ``merged``, v2 ``change`` with ``merged_from_id``)."""
        return bool(_lib.lib().pdw_event_is_merge(self._p()))

    @property
    def merged_from_id(self):
        """The id merged away, or None."""
        return self._str(_lib.lib().pdw_event_merged_from_id)

    @property
    def merged_to_id(self):
        """The surviving id, or None."""
        return self._str(_lib.lib().pdw_event_merged_to_id)

    @property
    def delivery_key(self):
        """Equal for every retry of one event, different for different events."""
        return self._str(_lib.lib().pdw_event_delivery_key)

    # -- changed fields --
    @property
    def changed(self):
        """The changed fields, in the library's order, as a tuple of str.

        v2: the keys of ``previous``; v1: the keys of ``current`` whose value differs from
        ``previous``. Custom fields are ``"custom_fields.<hash>"`` in both versions.
        """
        if "changed" not in self._cache:
            p, L = self._p(), _lib.lib()
            n = int(L.pdw_event_changed_count(p))
            self._cache["changed"] = tuple(_text(L.pdw_event_changed_field(p, i))
                                           for i in range(n))
        return self._cache["changed"]

    def has_changed(self, field):
        """Did ``field`` change? ``"custom_fields"`` is true when any custom field did."""
        rc = int(_lib.lib().pdw_event_changed(self._p(), _bytes(field, "field")))
        if rc < 0:
            raise PdwError(rc)
        return rc == 1

    # -- the body --
    @property
    def body(self):
        """The raw body, bytes."""
        if "body" not in self._cache:
            n = c_size_t(0)
            ptr = _lib.lib().pdw_event_body(self._p(), byref(n))
            self._cache["body"] = ctypes.string_at(ptr, n.value) if ptr else b""
        return self._cache["body"]

    @property
    def payload(self):
        """The whole body as a dict (parsed with json on first use)."""
        if "payload" not in self._cache:
            self._p()
            self._cache["payload"] = json.loads(self.body.decode("utf-8"))
        return self._cache["payload"]

    def _section(self, fn, v2_key, v1_key):
        # Which member, and whether there is one, is the C accessor's call
        # (pdw_event_data / pdw_event_previous: v2 key, v1 key, a v1 array's first element,
        # JSON null as none); ctypes cannot read the json_t it returns, so the value itself
        # is that same member of the body parsed with json.
        if not fn(self._p()):
            return None
        value = self.payload.get(v2_key if self.version == 2 else v1_key)
        if self.version == 1 and isinstance(value, list):
            value = value[0] if value else None  # v1 user events: an array of one
        return value

    @property
    def data(self):
        """The object's data as a dict: v2 ``data``, v1 ``current`` (v1 user events'
        ``current[0]``), as ``pdw_event_data()``. None when the delivery has none
        (deletes)."""
        return self._section(_lib.lib().pdw_event_data, "data", "current")

    @property
    def previous(self):
        """The previous values: v2 ``previous`` (only the changed fields), v1 ``previous``
        (the whole object), as ``pdw_event_previous()``. None when absent (creates)."""
        return self._section(_lib.lib().pdw_event_previous, "previous", "previous")

    def __repr__(self):
        if self._ptr is None:
            return "<pdwebhook.Event (outside its handler)>"
        return "<pdwebhook.Event %s %s>" % (self.name, self.entity_id)


# ---------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------
HandlerError = namedtuple("HandlerError", "pattern handler exception event_name delivery_key")
HandlerError.__doc__ = """A handler (or accept hook) raised. ``exception`` is the exception
object (with its traceback), ``pattern`` what the handler was registered for ("accept"
for the accept hook, "unhandled" for the fallback), ``handler`` the Python callable."""

DispatchResult = namedtuple("DispatchResult", "rc matched failed first_failure errors")
DispatchResult.__doc__ = """What :meth:`Receiver.dispatch_body` did: ``rc`` 0 or
``PDW_EHANDLER`` (-21), handlers matched and failed, and the HandlerErrors."""


class Response(tuple):
    """The answer to send: unpacks as ``(status, headers, body)``.

    ``headers`` is a list of ``(name, value)`` str pairs, Content-Type first; ``body`` is
    bytes. The other attributes describe the decision: ``reason`` (0 or a negative
    ``PDW_E*`` code) and ``reason_name``, ``event`` (canonical name, "" when not parsed),
    ``delivery_key``, ``webhook_id`` ("" when unknown), ``attempt`` (0 when not parsed),
    ``handlers_matched``, ``handlers_failed``, ``handler_rc``, ``errors``
    (the HandlerErrors of this request) and ``detail`` (the library's message, or "").
    """

    def __new__(cls, status, headers, body, **info):
        self = super().__new__(cls, (status, headers, body))
        self.__dict__.update(info)
        return self

    status = property(lambda self: self[0], doc="HTTP status to send.")
    headers = property(lambda self: self[1], doc="Headers to send, (name, value) pairs.")
    body = property(lambda self: self[2], doc="Body to send, bytes.")

    @property
    def ok(self):
        """True when the delivery was accepted (or was a duplicate of an accepted one)."""
        return 200 <= self[0] < 300

    def __repr__(self):
        return "Response(status=%d, reason=%s, event=%r)" % (self[0], self.reason_name,
                                                             self.event)


class _CallState:
    __slots__ = ("events", "errors", "fatal")

    def __init__(self):
        self.events = {}
        self.errors = []
        self.fatal = None


# ---------------------------------------------------------------------------------------
# Receiver
# ---------------------------------------------------------------------------------------
class Receiver:
    """A webhook endpoint: one ``pdw_receiver`` (auth, parsing, dedup, status policy) and
    its router, with Python handlers.

    ``credentials`` is a list of ``(user, password)`` pairs (several, for rotation). The
    keyword options are those of ``pdw_receiver_options`` (include/pdwebhook/receiver.h);
    0 / None / False means the library's default:

    - ``query_token``, ``query_token_name``: a ``?token=...`` instead of, or as well as,
      Basic auth. ``insecure_no_auth=True`` allows a receiver with neither.
    - ``realm``, ``max_body`` (default 1 MiB), ``max_depth``, ``wrong_credentials_status``
      (401; 403), ``handler_error_status`` (200; 500 makes Pipedrive retry),
      ``retry_after_seconds``, ``allow_missing_content_type``.
    - ``disable_dedup``, ``dedup_capacity``, ``dedup_ttl_ms``: the built-in dedup store.
    - ``inflight_lease_ms``: how long a delivery being accepted holds its dedup key before
      it is confirmed (0: 60 s; at or above ``dedup_ttl_ms``: no lease). A claim never
      confirmed (the process died before it could) is free again after it, so that a
      later retry is handed on instead of answered 503 ``PDW_EINFLIGHT`` until Pipedrive
      gives up.
    - ``accept``: a callable ``accept(event)`` run instead of the handlers, to queue the
      event durably (then call :meth:`dispatch_body` later). Returning normally answers
      200; raising answers 503 + Retry-After (``PDW_ESTORE``) and releases the dedup claim;
      returning a negative ``PDW_E*`` int answers with that code. Returning
      :data:`ACCEPT_DEFERRED` answers 200 but leaves the claim in flight (Pipedrive's
      retries meanwhile get 503 ``PDW_EINFLIGHT``) until :meth:`confirm` or
      :meth:`release` is called with the event's delivery key.
    - ``clock``: a callable returning milliseconds, for dedup expiry (tests).

    Raises :class:`PdwError` when the library refuses the options (``PDW_ENOAUTH`` without
    any credential, ``PDW_EINVAL`` for a bad one, ...), OSError when it cannot be loaded.

    Thread safety: register handlers before the first request; then :meth:`handle` may be
    called from many threads at once. :meth:`close` only when no call is running.
    """

    def __init__(self, credentials=(), *, query_token=None, query_token_name=None,
                 insecure_no_auth=False, realm=None, max_body=0, max_depth=0,
                 wrong_credentials_status=0, handler_error_status=0, retry_after_seconds=0,
                 allow_missing_content_type=False, disable_dedup=False, dedup_capacity=0,
                 dedup_ttl_ms=0, accept=None, clock=None, inflight_lease_ms=0):
        L = _lib.lib()
        self._ptr = None
        self._owned = True
        self._keep = []            # ctypes callbacks: alive as long as the receiver
        self._local = threading.local()
        self.max_body = int(max_body) or (1 << 20)
        opts, keep = self._options(
            credentials, query_token=query_token, query_token_name=query_token_name,
            insecure_no_auth=insecure_no_auth, realm=realm, max_body=max_body,
            max_depth=max_depth, wrong_credentials_status=wrong_credentials_status,
            handler_error_status=handler_error_status,
            retry_after_seconds=retry_after_seconds,
            allow_missing_content_type=allow_missing_content_type,
            disable_dedup=disable_dedup, dedup_capacity=dedup_capacity,
            dedup_ttl_ms=dedup_ttl_ms, clock=clock, inflight_lease_ms=inflight_lease_ms)
        self._keep.extend(cb for cb in keep if isinstance(cb, ctypes._CFuncPtr))
        if accept is not None:
            cb = _lib.pdw_accept_cb(self._trampoline(accept, "accept", accept=True))
            self._keep.append(cb)
            opts.accept = cb
        err = _lib.pdw_error()
        out = c_void_p()
        rc = L.pdw_receiver_new(byref(out), byref(opts), byref(err))
        if rc:
            raise PdwError._from(rc, err)
        self._ptr = out.value
        self._router = L.pdw_receiver_router(self._ptr)
        # The library copied credentials, token and realm (and wipes them on free).
        del opts, keep

    @staticmethod
    def _options(credentials=(), *, query_token=None, query_token_name=None,
                 insecure_no_auth=False, realm=None, max_body=0, max_depth=0,
                 wrong_credentials_status=0, handler_error_status=0, retry_after_seconds=0,
                 allow_missing_content_type=False, disable_dedup=False, dedup_capacity=0,
                 dedup_ttl_ms=0, clock=None, inflight_lease_ms=0):
        """A ``pdw_receiver_options`` and what it points to (keep it alive with it)."""
        L = _lib.lib()
        keep = []
        opts = _lib.pdw_receiver_options()
        rc = L.pdw_receiver_options_init(byref(opts), _lib.PDW_RECEIVER_OPTIONS_VERSION)
        if rc:
            raise PdwError(rc)
        if isinstance(credentials, tuple) and len(credentials) == 2 and \
                all(isinstance(c, (str, bytes)) for c in credentials):
            credentials = [credentials]   # one pair given without its list
        pairs = list(credentials or ())
        if pairs:
            creds = (_lib.pdw_credential * len(pairs))()
            for i, pair in enumerate(pairs):
                user, password = pair
                creds[i].user = _bytes(user, "credential user")
                creds[i].password = _bytes(password, "credential password")
            opts.credentials = creds
            opts.num_credentials = len(pairs)
            keep.append(creds)
        opts.query_token = _bytes(query_token, "query_token")
        opts.query_token_name = _bytes(query_token_name, "query_token_name")
        opts.insecure_no_auth = 1 if insecure_no_auth else 0
        opts.realm = _bytes(realm, "realm")
        opts.max_body = int(max_body)
        opts.max_depth = int(max_depth)
        opts.wrong_credentials_status = int(wrong_credentials_status)
        opts.handler_error_status = int(handler_error_status)
        opts.retry_after_seconds = int(retry_after_seconds)
        opts.allow_missing_content_type = 1 if allow_missing_content_type else 0
        opts.disable_dedup = 1 if disable_dedup else 0
        opts.dedup_capacity = int(dedup_capacity)
        opts.dedup_ttl_ms = int(dedup_ttl_ms)
        opts.inflight_lease_ms = int(inflight_lease_ms)
        if clock is not None:
            def clock_tramp(_user, _clock=clock):
                try:
                    return max(0, int(_clock()))
                except BaseException:   # never into C; a stuck clock only delays expiry
                    log.exception("pdwebhook: the clock callable raised")
                    return 0
            cb = _lib.pdw_clock_cb(clock_tramp)
            keep.append(cb)
            opts.clock = cb
        return opts, keep

    @classmethod
    def _borrow(cls, ptr, max_body=0):
        """A Receiver over a C receiver owned by something else (an intake's)."""
        self = cls.__new__(cls)
        self._ptr = ptr
        self._owned = False
        self._keep = []
        self._local = threading.local()
        self.max_body = int(max_body) or (1 << 20)
        self._router = _lib.lib().pdw_receiver_router(ptr)
        return self

    # -- lifetime --
    def close(self):
        """Free the C receiver. Idempotent; not while a call is running."""
        if self._ptr is not None:
            if self._owned:
                _lib.lib().pdw_receiver_free(self._ptr)
            self._ptr = None
            self._router = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def _r(self):
        if self._ptr is None:
            raise ValueError("pdwebhook: the receiver is closed")
        return self._ptr

    # -- registration --
    def on(self, pattern, handler=None, *, changed=None):
        """Register ``handler(event)`` for ``pattern`` (``"updated.deal"``, ``"*.deal"``,
        ``"change.deal"``, ``"*.*"``, ``"merged.person"``; either version's words).

        With ``changed="stage_id"`` the handler runs only when that field changed
        (``"custom_fields"``: any custom field). Use as a decorator
        (``@receiver.on("added.deal")``) or call with the handler. Returns the handler.
        A handler signals failure by raising; its return value is ignored.
        Raises PdwError: ``PDW_EPATTERN`` for a bad pattern, ``PDW_EFROZEN`` after the
        first request.
        """
        if handler is None:
            return lambda f: self.on(pattern, f, changed=changed)
        if not callable(handler):
            raise TypeError("handler must be callable")
        label = pattern if changed is None else "%s [%s]" % (pattern, changed)
        cb = _lib.pdw_handler_cb(self._trampoline(handler, label))
        err = _lib.pdw_error()
        L = _lib.lib()
        if changed is None:
            rc = L.pdw_router_on(self._router_p(), _bytes(pattern, "pattern"), cb, None,
                                 byref(err))
        else:
            rc = L.pdw_router_on_change(self._router_p(), _bytes(pattern, "pattern"),
                                        _bytes(changed, "changed"), cb, None, byref(err))
        if rc:
            raise PdwError._from(rc, err)
        self._keep.append(cb)
        return handler

    def on_unhandled(self, handler):
        """Set the fallback ``handler(event)``, run for events no handler matched (one
        only; a new one replaces it). Usable as a decorator. Returns the handler."""
        cb = _lib.pdw_handler_cb(self._trampoline(handler, "unhandled"))
        rc = _lib.lib().pdw_router_on_unhandled(self._router_p(), cb, None)
        if rc:
            raise PdwError(rc)
        self._keep.append(cb)
        return handler

    def _router_p(self):
        self._r()
        return self._router

    @property
    def handler_count(self):
        """Number of patterns registered."""
        return int(_lib.lib().pdw_router_count(self._router_p()))

    # -- the trampoline: Python handlers behind C callbacks --
    def _trampoline(self, func, label, accept=False):
        def trampoline(ev_ptr, *_users):  # handlers: (ev, user); accept: (ev, request_user, user)
            # Nothing may escape into C: ctypes would print the exception and return 0,
            # silently turning a failure into a success.
            try:
                state = getattr(self._local, "state", None)
                event = state.events.get(ev_ptr) if state is not None else None
                if event is None:
                    event = Event(ev_ptr)
                    if state is not None:
                        state.events[ev_ptr] = event
                rc = func(event)
                if accept and isinstance(rc, int) and not isinstance(rc, bool) and (
                        rc < 0 or rc == _lib.PDW_ACCEPT_DEFERRED):
                    return rc
                return 0
            except BaseException as exc:  # noqa: B902 - KeyboardInterrupt too, re-raised later
                try:
                    self._record(ev_ptr, label, func, exc)
                except BaseException:
                    pass
                return _lib.PDW_ESTORE if accept else 1
        return trampoline

    def _record(self, ev_ptr, label, func, exc):
        L = _lib.lib()
        name = _text(L.pdw_event_name(ev_ptr))
        key = _text(L.pdw_event_delivery_key(ev_ptr))
        state = getattr(self._local, "state", None)
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            if state is not None and state.fatal is None:
                state.fatal = exc
        else:
            log.error("pdwebhook: handler %r for %s failed on %s (%s)",
                      getattr(func, "__qualname__", func), label, name, key,
                      exc_info=(type(exc), exc, exc.__traceback__))
        if state is not None:
            state.errors.append(HandlerError(label, func, exc, name, key))

    def _begin(self):
        prev = getattr(self._local, "state", None)
        self._local.state = _CallState()
        return prev

    def _end(self, prev):
        state = self._local.state
        self._local.state = prev
        for event in state.events.values():
            event._detach()
        self._local.last_errors = state.errors
        return state

    @property
    def last_errors(self):
        """The HandlerErrors of the last :meth:`handle` / :meth:`dispatch_body` call made
        by this thread (an empty list when every handler succeeded)."""
        return list(getattr(self._local, "last_errors", []))

    # -- requests --
    @staticmethod
    def _request(method, headers, body, query):
        keep = []

        def span(b):
            if b is None:
                return None, 0
            buf = ctypes.c_char_p(b)
            keep.append((b, buf))
            return ctypes.cast(buf, c_void_p), len(b)

        pairs = list(headers.items() if hasattr(headers, "items") else (headers or ()))
        harr = (_lib.pdw_header * max(1, len(pairs)))()
        for i, (name, value) in enumerate(pairs):
            harr[i].name, harr[i].name_len = span(_header_bytes(name, "header name"))
            harr[i].value, harr[i].value_len = span(_header_bytes(value, "header value"))
        req = _lib.pdw_request()
        req.version = _lib.PDW_REQUEST_VERSION
        req.method, req.method_len = span(_bytes(method, "method", "latin-1"))
        req.headers = harr
        req.num_headers = len(pairs)
        q = _bytes(query, "query")
        if q is not None and q.startswith(b"?"):
            q = q[1:]
        req.query, req.query_len = span(q)
        req.body, req.body_len = span(_bytes(body, "body") if body is not None else b"")
        keep.append(harr)
        return req, keep

    @staticmethod
    def _response(verdict, errors=(), detail=""):
        headers = []
        if verdict.content_type:
            headers.append(("Content-Type", ctypes.string_at(verdict.content_type).decode()))
        for i in range(min(verdict.num_headers, _lib.PDW_VERDICT_MAX_HEADERS)):
            h = verdict.headers[i]
            headers.append((ctypes.string_at(h.name, h.name_len).decode("latin-1"),
                            ctypes.string_at(h.value, h.value_len).decode("latin-1")))
        body = ctypes.string_at(verdict.body, verdict.body_len) if verdict.body else b""
        return Response(verdict.status, headers, body,
                        reason=verdict.reason, reason_name=err_name(verdict.reason),
                        event=verdict.event.decode(), delivery_key=verdict.delivery_key.decode(),
                        handlers_matched=verdict.handlers_matched,
                        handlers_failed=verdict.handlers_failed,
                        handler_rc=verdict.handler_rc, webhook_id=verdict.webhook_id.decode(),
                        attempt=verdict.attempt, errors=list(errors), detail=detail)

    def handle(self, method, headers, body, query=None):
        """Run the whole pipeline on one request; return the :class:`Response` to send.

        ``method`` str; ``headers`` a mapping (dict, ``http.client.HTTPMessage``, ...) or
        a list of ``(name, value)`` pairs, str (Latin-1, as Python servers decode them) or
        bytes; ``body`` bytes (or str, sent as UTF-8); ``query`` the query string without
        or with its leading "?", or None. Handlers run inside this call, on this thread.
        The response unpacks as ``(status, headers, body)``; send exactly that.
        A KeyboardInterrupt or SystemExit raised by a handler is re-raised here, after the
        library has finished the request.
        """
        req, keep = self._request(method, headers, body, query)
        verdict = _lib.pdw_verdict()
        verdict.version = _lib.PDW_VERDICT_VERSION
        err = _lib.pdw_error()
        prev = self._begin()
        try:
            _lib.lib().pdw_receiver_handle(self._r(), byref(req), byref(verdict), byref(err))
        finally:
            state = self._end(prev)
        del keep
        if state.fatal is not None:
            raise state.fatal
        detail = err.message.decode("utf-8", "replace") if err.code else ""
        return self._response(verdict, state.errors, detail)

    def check_head(self, method, headers, query=None):
        """The checks that need no body (method, Content-Type, Content-Length against
        ``max_body``, credentials), to refuse a request before reading its body.

        Returns None to go on (read the body and call :meth:`handle`), or the
        :class:`Response` to send instead.
        """
        req, keep = self._request(method, headers, None, query)
        verdict = _lib.pdw_verdict()
        verdict.version = _lib.PDW_VERDICT_VERSION
        rc = _lib.lib().pdw_receiver_check_head(self._r(), byref(req), byref(verdict))
        del keep
        return None if rc == 0 else self._response(verdict)

    def confirm(self, delivery_key):
        """Confirm the dedup claim of a delivery whose ``accept`` hook returned
        :data:`ACCEPT_DEFERRED`, once it is safe: later retries are duplicates. Raises
        PdwError (``PDW_ENOTFOUND`` when the claim is unknown or expired)."""
        k = _bytes(delivery_key, "delivery_key")
        rc = _lib.lib().pdw_receiver_confirm(self._r(), k, len(k))
        if rc < 0:
            raise PdwError(rc)

    def release(self, delivery_key):
        """Release the dedup claim of a delivery whose ``accept`` hook returned
        :data:`ACCEPT_DEFERRED`, when it was not kept after all: the next retry is handed
        on again. Raises PdwError on a store failure."""
        k = _bytes(delivery_key, "delivery_key")
        rc = _lib.lib().pdw_receiver_release(self._r(), k, len(k))
        if rc < 0:
            raise PdwError(rc)

    def dispatch_body(self, body):
        """Parse and dispatch a body accepted earlier (by the ``accept`` hook) to the
        handlers. No authentication and no dedup. Returns a :class:`DispatchResult`;
        raises PdwError when the body does not parse."""
        b = _bytes(body, "body")
        res = _lib.pdw_dispatch_result()
        err = _lib.pdw_error()
        prev = self._begin()
        try:
            rc = _lib.lib().pdw_receiver_dispatch_body(self._r(), b, len(b), byref(res),
                                                       byref(err))
        finally:
            state = self._end(prev)
        if state.fatal is not None:
            raise state.fatal
        if rc < 0 and rc != _lib.PDW_EHANDLER:
            raise PdwError._from(rc, err)
        return DispatchResult(rc, res.matched, res.failed, res.first_failure, state.errors)


from ._intake import Intake  # noqa: E402  (it builds on Receiver)
