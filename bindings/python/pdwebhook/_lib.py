"""Loading libpdwebhook and declaring its C API for ctypes.

Only exported ``pdw_*`` functions are called. The structures below mirror the public
headers field for field; ``tests/test_layout.py`` checks every size and offset against
what the C compiler says (a small C helper prints them), so a header change that is not
mirrored here fails the tests instead of corrupting memory.
"""

import ctypes
import os
import sys
import threading
from ctypes import (CFUNCTYPE, POINTER, Structure, c_char, c_char_p, c_int, c_longlong,
                    c_size_t, c_uint, c_uint64, c_int64, c_void_p)

#: The SONAME number this binding is written for: it loads ``libpdwebhook.so.<SOVERSION>``
#: and refuses a library whose major version differs (docs/ABI.md: SONAME == major).
SOVERSION = 1
#: Oldest minor version of that major that has every function used here.
MIN_MINOR = 0

#: Environment variable naming the library: a file, or a directory holding
#: ``libpdwebhook.so.<SOVERSION>``; several may be given, separated by os.pathsep.
LIBRARY_ENV = "PDWEBHOOK_LIBRARY"

#: Directories (or files) tried after $PDWEBHOOK_LIBRARY and before the system's dynamic
#: linker search (LD_LIBRARY_PATH, ldconfig's cache). Append to it before the first use.
search_path = []

# ---- constants of the headers (checked by tests/test_layout.py) ----
PDW_ERROR_MESSAGE_MAX = 160
PDW_NAME_MAX = 48
PDW_ID_MAX = 64
PDW_DELIVERY_KEY_MAX = 320
PDW_VERDICT_MAX_HEADERS = 4
PDW_RECEIVER_OPTIONS_VERSION = 1
PDW_REQUEST_VERSION = 1
PDW_VERDICT_VERSION = 1

PDW_OK = 0
PDW_EINVAL = -2
PDW_EDUPLICATE = -20
PDW_EHANDLER = -21
PDW_ESTORE = -22
PDW_EFROZEN = -23
PDW_EINFLIGHT = -38
PDW_ACCEPT_DEFERRED = 1  # receiver.h: an accept hook settles its claim itself


# ---- structures (include/pdwebhook/*.h) ----
class pdw_error(Structure):
    _fields_ = [
        ("code", c_int),
        ("offset", c_longlong),
        ("message", c_char * PDW_ERROR_MESSAGE_MAX),
    ]


class pdw_header(Structure):
    # Spans, not C strings: pointers are c_void_p and read with ctypes.string_at(p, len).
    _fields_ = [
        ("name", c_void_p),
        ("name_len", c_size_t),
        ("value", c_void_p),
        ("value_len", c_size_t),
    ]


class pdw_request(Structure):
    _fields_ = [
        ("version", c_uint),
        ("method", c_void_p),
        ("method_len", c_size_t),
        ("headers", POINTER(pdw_header)),
        ("num_headers", c_size_t),
        ("query", c_void_p),
        ("query_len", c_size_t),
        ("body", c_void_p),
        ("body_len", c_size_t),
        ("user", c_void_p),  # handed to the accept hook as request_user
    ]


class pdw_verdict(Structure):
    _fields_ = [
        ("version", c_uint),
        ("status", c_int),
        ("reason", c_int),
        ("num_headers", c_size_t),
        ("headers", pdw_header * PDW_VERDICT_MAX_HEADERS),
        ("body", c_void_p),
        ("body_len", c_size_t),
        ("content_type", c_void_p),
        ("handlers_matched", c_uint),
        ("handlers_failed", c_uint),
        ("handler_rc", c_int),
        ("event", c_char * (2 * PDW_NAME_MAX + 2)),
        ("delivery_key", c_char * PDW_DELIVERY_KEY_MAX),
        ("scratch_", c_char * 32),
        ("webhook_id", c_char * (PDW_ID_MAX + 1)),
        ("attempt", c_uint),
    ]


class pdw_credential(Structure):
    _fields_ = [
        ("user", c_char_p),
        ("password", c_char_p),
    ]


class pdw_dispatch_result(Structure):
    _fields_ = [
        ("matched", c_uint),
        ("failed", c_uint),
        ("first_failure", c_int),
    ]


# Callback types (router.h, receiver.h). The event pointer stays a c_void_p.
pdw_handler_cb = CFUNCTYPE(c_int, c_void_p, c_void_p)
pdw_handler_error_cb = CFUNCTYPE(None, c_void_p, c_char_p, c_int, c_void_p)
pdw_accept_cb = CFUNCTYPE(c_int, c_void_p, c_void_p, c_void_p)  # ev, request_user, user
pdw_clock_cb = CFUNCTYPE(c_uint64, c_void_p)


class pdw_receiver_options(Structure):
    _fields_ = [
        ("version", c_uint),
        ("credentials", POINTER(pdw_credential)),
        ("num_credentials", c_size_t),
        ("query_token", c_char_p),
        ("query_token_name", c_char_p),
        ("insecure_no_auth", c_int),
        ("realm", c_char_p),
        ("max_body", c_size_t),
        ("max_depth", c_uint),
        ("wrong_credentials_status", c_int),
        ("handler_error_status", c_int),
        ("retry_after_seconds", c_int),
        ("allow_missing_content_type", c_int),
        ("disable_dedup", c_int),
        ("dedup", c_void_p),                  # pdw_dedup_store *: not exposed here
        ("dedup_capacity", c_size_t),
        ("dedup_ttl_ms", c_uint64),
        ("accept", pdw_accept_cb),
        ("accept_user", c_void_p),
        ("clock", pdw_clock_cb),
        ("clock_user", c_void_p),
        ("allocator", c_void_p),              # const pdw_allocator *: not exposed here
        ("inflight_lease_ms", c_uint64),
    ]


# name: (restype, argtypes)
_PROTOTYPES = {
    "pdw_free": (None, [c_void_p]),
    "pdw_version": (c_char_p, []),
    "pdw_version_number": (c_uint, []),
    "pdw_strerror": (c_char_p, [c_int]),
    "pdw_err_name": (c_char_p, [c_int]),
    "pdw_err_http_status": (c_int, [c_int]),
    "pdw_error_clear": (None, [POINTER(pdw_error)]),
    # event.h
    "pdw_event_version": (c_int, [c_void_p]),
    "pdw_event_action": (c_char_p, [c_void_p]),
    "pdw_event_delivered_action": (c_char_p, [c_void_p]),
    "pdw_event_object": (c_char_p, [c_void_p]),
    "pdw_event_name": (c_char_p, [c_void_p]),
    "pdw_event_delivered_name": (c_char_p, [c_void_p]),
    "pdw_event_entity_id": (c_char_p, [c_void_p]),
    "pdw_event_event_id": (c_char_p, [c_void_p]),
    "pdw_event_webhook_id": (c_char_p, [c_void_p]),
    "pdw_event_company_id": (c_char_p, [c_void_p]),
    "pdw_event_user_id": (c_char_p, [c_void_p]),
    "pdw_event_correlation_id": (c_char_p, [c_void_p]),
    "pdw_event_change_source": (c_char_p, [c_void_p]),
    "pdw_event_attempt": (c_uint, [c_void_p]),
    "pdw_event_timestamp_ms": (c_int64, [c_void_p]),
    "pdw_event_is_bulk": (c_int, [c_void_p]),
    "pdw_event_is_merge": (c_int, [c_void_p]),
    "pdw_event_merged_from_id": (c_char_p, [c_void_p]),
    "pdw_event_merged_to_id": (c_char_p, [c_void_p]),
    "pdw_event_delivery_key": (c_char_p, [c_void_p]),
    "pdw_event_body": (c_void_p, [c_void_p, POINTER(c_size_t)]),
    # json_t * borrowed from the event's DOM; only tested for NULL here
    "pdw_event_data": (c_void_p, [c_void_p]),
    "pdw_event_previous": (c_void_p, [c_void_p]),
    "pdw_event_changed_count": (c_size_t, [c_void_p]),
    "pdw_event_changed_field": (c_char_p, [c_void_p, c_size_t]),
    "pdw_event_changed": (c_int, [c_void_p, c_char_p]),
    # router.h
    "pdw_router_on": (c_int, [c_void_p, c_char_p, pdw_handler_cb, c_void_p,
                              POINTER(pdw_error)]),
    "pdw_router_on_change": (c_int, [c_void_p, c_char_p, c_char_p, pdw_handler_cb, c_void_p,
                                     POINTER(pdw_error)]),
    "pdw_router_on_unhandled": (c_int, [c_void_p, pdw_handler_cb, c_void_p]),
    "pdw_router_on_error": (c_int, [c_void_p, pdw_handler_error_cb, c_void_p]),
    "pdw_router_freeze": (None, [c_void_p]),
    "pdw_router_count": (c_size_t, [c_void_p]),
    # receiver.h
    "pdw_receiver_options_init": (c_int, [POINTER(pdw_receiver_options), c_uint]),
    "pdw_receiver_new": (c_int, [POINTER(c_void_p), POINTER(pdw_receiver_options),
                                 POINTER(pdw_error)]),
    "pdw_receiver_free": (None, [c_void_p]),
    "pdw_receiver_router": (c_void_p, [c_void_p]),
    "pdw_receiver_check_head": (c_int, [c_void_p, POINTER(pdw_request), POINTER(pdw_verdict)]),
    "pdw_receiver_handle": (c_int, [c_void_p, POINTER(pdw_request), POINTER(pdw_verdict),
                                    POINTER(pdw_error)]),
    "pdw_receiver_dispatch_body": (c_int, [c_void_p, c_char_p, c_size_t,
                                           POINTER(pdw_dispatch_result), POINTER(pdw_error)]),
    "pdw_receiver_confirm": (c_int, [c_void_p, c_char_p, c_size_t]),
    "pdw_receiver_release": (c_int, [c_void_p, c_char_p, c_size_t]),
}


def _file_name():
    if sys.platform == "darwin":
        return "libpdwebhook.%d.dylib" % SOVERSION
    return "libpdwebhook.so.%d" % SOVERSION


def _candidates(path=None):
    """Where to look, in order: the argument, $PDWEBHOOK_LIBRARY, search_path, the system."""
    entries = []
    if path:
        entries.append(os.fspath(path))
    env = os.environ.get(LIBRARY_ENV)
    if env:
        entries.extend(e for e in env.split(os.pathsep) if e)
    entries.extend(os.fspath(e) for e in search_path)
    for e in entries:
        yield os.path.join(e, _file_name()) if os.path.isdir(e) else e
    yield _file_name()  # the dynamic linker's own search


def _declare(cdll):
    for name, (restype, argtypes) in _PROTOTYPES.items():
        fn = getattr(cdll, name)  # AttributeError: the library lacks a function we need
        fn.restype = restype
        fn.argtypes = argtypes
    return cdll


_lock = threading.Lock()
_lib = None
_lib_path = None


def load(path=None):
    """Load the library now (it is otherwise loaded on first use) and return the CDLL.

    ``path`` is a file or a directory holding ``libpdwebhook.so.<SOVERSION>``; without
    it, $PDWEBHOOK_LIBRARY, then :data:`search_path`, then the system's dynamic linker
    are tried. Raises OSError when none loads or the library's major version is not
    :data:`SOVERSION`. Loading twice returns the first library.
    """
    global _lib, _lib_path
    with _lock:
        if _lib is not None:
            return _lib
        tried = []
        for cand in _candidates(path):
            try:
                cdll = ctypes.CDLL(cand)
            except OSError as exc:
                tried.append("%s (%s)" % (cand, exc))
                continue
            try:
                _declare(cdll)
            except AttributeError as exc:
                tried.append("%s (missing function: %s)" % (cand, exc))
                continue
            number = cdll.pdw_version_number()
            major, minor = number >> 16, (number >> 8) & 0xFF
            if major != SOVERSION or minor < MIN_MINOR:
                tried.append("%s (version %s; this binding needs %d.%d or a later %d.x)"
                             % (cand, cdll.pdw_version().decode(), SOVERSION, MIN_MINOR,
                                SOVERSION))
                continue
            _lib, _lib_path = cdll, cand
            return _lib
        raise OSError("pdwebhook: cannot load %s; set %s to the library or its directory. "
                      "Tried: %s" % (_file_name(), LIBRARY_ENV, "; ".join(tried)))


def lib():
    """The loaded library (loading it on first use)."""
    return _lib if _lib is not None else load()


def library_path():
    """What the library was loaded from, or None before it is loaded."""
    return _lib_path
