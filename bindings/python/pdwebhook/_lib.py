"""Loading libpdwebhook and declaring its C API for ctypes.

Only exported ``pdw_*`` functions are called. The structures below mirror the public
headers field for field; ``tests/test_layout.py`` checks every size and offset against
what the C compiler says (a small C helper prints them), so a header change that is not
mirrored here fails the tests instead of corrupting memory.
"""

import ctypes
import ctypes.util
import os
import sys
import sysconfig
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
        ("peer", c_void_p),  # the client's address as text (for an allowlist)
        ("peer_len", c_size_t),
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
        ("allowlist", c_void_p),              # const pdw_allowlist *: not exposed here
        ("trusted_proxies", c_void_p),
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


# ---- the durable intake (libpdwebhook-durable: spool.h, worker.h, intake.h) ----
PDW_INTAKE_OPTIONS_VERSION = 1
PDW_WORKER_OPTIONS_VERSION = 1
PDW_INTAKE_PENDING = 1


class pdw_spool_record(Structure):
    _fields_ = [
        ("id", c_uint64),
        ("received_ms", c_int64),
        ("key", c_void_p),
        ("key_len", c_size_t),
        ("body", c_void_p),
        ("body_len", c_size_t),
    ]


# int handle(const pdw_spool_record *rec, unsigned attempt, char *errbuf, size_t errcap,
#            void *user): called on the worker's threads (ctypes takes the GIL)
pdw_worker_handle_cb = CFUNCTYPE(c_int, POINTER(pdw_spool_record), c_uint, c_void_p, c_size_t,
                                 c_void_p)
pdw_dead_letter_cb = CFUNCTYPE(None, POINTER(pdw_spool_record), c_uint, c_char_p, c_void_p)
pdw_intake_done_cb = CFUNCTYPE(None, POINTER(pdw_verdict), c_void_p)
pdw_intake_error_cb = CFUNCTYPE(None, c_int, c_char_p, c_void_p)


class pdw_worker_options(Structure):
    _fields_ = [
        ("version", c_uint),
        ("allocator", c_void_p),
        ("spool", c_void_p),
        ("receiver", c_void_p),
        ("handle", pdw_worker_handle_cb),
        ("handle_user", c_void_p),
        ("threads", c_uint),
        ("max_attempts", c_uint),
        ("backoff_base_ms", c_uint64),
        ("backoff_max_ms", c_uint64),
        ("dead_letter_path", c_char_p),
        ("on_dead_letter", pdw_dead_letter_cb),
        ("dead_letter_user", c_void_p),
        ("sync", c_void_p),                   # pdw_worker_sync_cb: not exposed here
        ("sync_user", c_void_p),
        ("marker_flush_ms", c_uint64),
        ("max_queued_bytes", c_uint64),
    ]


class pdw_intake_options(Structure):
    _fields_ = [
        ("version", c_uint),
        ("receiver", POINTER(pdw_receiver_options)),
        ("spool_dir", c_char_p),
        ("spool", c_void_p),                  # const pdw_spool_options *: defaults
        ("worker", POINTER(pdw_worker_options)),
        ("on_error", pdw_intake_error_cb),
        ("error_user", c_void_p),
        ("allocator", c_void_p),
        ("dedup_change", c_int),
    ]


_DURABLE_PROTOTYPES = {
    "pdw_worker_options_init": (c_int, [POINTER(pdw_worker_options), c_uint]),
    "pdw_intake_options_init": (c_int, [POINTER(pdw_intake_options), c_uint]),
    "pdw_intake_new": (c_int, [POINTER(c_void_p), POINTER(pdw_intake_options),
                               POINTER(pdw_error)]),
    "pdw_intake_receiver": (c_void_p, [c_void_p]),
    "pdw_intake_start": (c_int, [c_void_p, POINTER(ctypes.c_long), POINTER(pdw_error)]),
    "pdw_intake_submit": (c_int, [c_void_p, POINTER(pdw_request), POINTER(pdw_verdict),
                                  pdw_intake_done_cb, c_void_p]),
    "pdw_intake_begin": (c_int, [POINTER(c_void_p), c_void_p, POINTER(pdw_request),
                                 POINTER(pdw_verdict)]),
    "pdw_intake_finish": (c_int, [c_void_p, c_void_p, c_size_t, POINTER(pdw_verdict),
                                  pdw_intake_done_cb, c_void_p]),
    "pdw_intake_pending_free": (None, [c_void_p]),
    "pdw_intake_stop": (None, [c_void_p]),
    "pdw_intake_free": (None, [c_void_p]),
}


def _file_name(base="libpdwebhook"):
    if sys.platform == "darwin":
        return "%s.%d.dylib" % (base, SOVERSION)
    return "%s.so.%d" % (base, SOVERSION)


def _multiarch():
    """Debian's multiarch triplet of this interpreter ("x86_64-linux-gnu"), or None."""
    arch = sysconfig.get_config_var("MULTIARCH")
    return arch or None


def _lib_dirs(prefix):
    arch = _multiarch()
    dirs = [os.path.join(prefix, "lib", arch)] if arch else []
    dirs += [os.path.join(prefix, "lib64"), os.path.join(prefix, "lib")]
    return dirs


def _usual_dirs():
    """Where an installed library usually is, when the dynamic linker does not know it
    (a ``cmake --install`` without ``ldconfig``, a prefix next to the interpreter).

    In order: the package's own directory (a library copied next to the package, as a
    wheel would carry it), the interpreter's prefixes (a virtualenv's, then the base
    installation's: ``cmake --install build --prefix "$VIRTUAL_ENV"``), ``/usr/local``,
    then ``/usr`` and ``/``."""
    here = os.path.dirname(os.path.abspath(__file__))
    dirs = [here, os.path.join(here, ".libs")]
    prefixes = []
    for p in (sys.prefix, sys.exec_prefix,
              os.path.dirname(os.path.dirname(os.path.abspath(sys.executable or ""))),
              "/usr/local", sys.base_prefix, sys.base_exec_prefix, "/usr", "/"):
        if p and p not in prefixes:
            prefixes.append(p)
    for p in prefixes:
        dirs.extend(_lib_dirs(p))
    seen, out = set(), []
    for d in dirs:
        if d not in seen:
            seen.add(d)
            out.append(d)
    return out


def _candidates(path=None, base="libpdwebhook"):
    """Where to look, in order: the argument, $PDWEBHOOK_LIBRARY, search_path, the
    directories of $LD_LIBRARY_PATH, the usual directories (:func:`_usual_dirs`: the
    package's own, the interpreter's prefix, /usr/local, /usr), ctypes.util.find_library
    (ldconfig's cache), and last the bare SONAME (the dynamic linker's own search)."""
    name = _file_name(base)
    entries = []
    if path:
        entries.append(os.fspath(path))
    env = os.environ.get(LIBRARY_ENV)
    if env:
        entries.extend(e for e in env.split(os.pathsep) if e)
    entries.extend(os.fspath(e) for e in search_path)
    for e in entries:
        yield os.path.join(e, name) if os.path.isdir(e) else e
    ld = os.environ.get("LD_LIBRARY_PATH")
    dirs = [d for d in ld.split(os.pathsep) if d] if ld else []
    for d in dirs + _usual_dirs():
        yield os.path.join(d, name)   # load() skips (and names) the ones that are absent
    found = ctypes.util.find_library(base[3:] if base.startswith("lib") else base)
    if found and found != name:
        yield found  # another major version is refused by load() with its reason
    yield name  # the dynamic linker's own search


def _declare(cdll, prototypes=None):
    for name, (restype, argtypes) in (prototypes or _PROTOTYPES).items():
        fn = getattr(cdll, name)  # AttributeError: the library lacks a function we need
        fn.restype = restype
        fn.argtypes = argtypes
    return cdll


_lock = threading.Lock()
_lib = None
_lib_path = None
_durable = None
_durable_path = None


class LibraryNotFound(OSError):
    """The C library could not be loaded; ``tried`` lists each candidate and why."""

    def __init__(self, message, tried):
        super().__init__(message)
        self.tried = list(tried)


def load(path=None):
    """Load the library now (it is otherwise loaded on first use) and return the CDLL.

    ``path`` is a file or a directory holding ``libpdwebhook.so.<SOVERSION>``; without
    it, $PDWEBHOOK_LIBRARY, then :data:`search_path`, $LD_LIBRARY_PATH, the usual
    directories (the package's own, the interpreter's prefix, /usr/local/lib, /usr/lib),
    ``ctypes.util.find_library("pdwebhook")`` and the dynamic linker are tried. Raises
    :class:`LibraryNotFound` (an OSError) naming every candidate and why it was not
    taken, when none loads or the library's major version is not :data:`SOVERSION`.
    Loading twice returns the first library.
    """
    global _lib, _lib_path
    with _lock:
        if _lib is not None:
            return _lib
        tried = []
        absent = []
        for cand in _candidates(path):
            if os.sep in cand and not os.path.exists(cand):
                absent.append(cand)
                continue
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
            _lib, _lib_path = cdll, _where(cdll, cand)
            return _lib
        raise LibraryNotFound(
            "pdwebhook: cannot load %s (the pdwebhook C library, version %d.x). Install it "
            "(cmake --install build, or the libpdwebhook1 package), or set %s to the file "
            "or its directory. Tried: %s; not found in: %s"
            % (_file_name(), SOVERSION, LIBRARY_ENV, "; ".join(tried),
               ", ".join(os.path.dirname(a) or a for a in absent)),
            tried + ["%s (no such file)" % a for a in absent])


def _where(cdll, cand):
    """The file a CDLL came from: the candidate when it is a path, else the dynamic
    linker's answer (dladdr on one of its functions), else the name."""
    if os.sep in cand:
        return cand
    try:
        class Dl_info(ctypes.Structure):
            _fields_ = [("dli_fname", c_char_p), ("dli_fbase", c_void_p),
                        ("dli_sname", c_char_p), ("dli_saddr", c_void_p)]
        libdl = ctypes.CDLL(None)
        info = Dl_info()
        if libdl.dladdr(ctypes.cast(cdll.pdw_version, c_void_p), ctypes.byref(info)):
            return info.dli_fname.decode()
    except (AttributeError, OSError):
        pass
    return cand


def durable():
    """libpdwebhook-durable (the intake), loaded on first use: first from the directory
    the core library came from, then where the core is looked for. Raises
    :class:`LibraryNotFound` naming what it tried."""
    global _durable, _durable_path
    core = lib()
    with _lock:
        if _durable is not None:
            return _durable
        base = "libpdwebhook-durable"
        name = _file_name(base)
        first = []
        if _lib_path and os.sep in _lib_path:
            first.append(os.path.join(os.path.dirname(os.path.realpath(_lib_path)), name))
            first.append(os.path.join(os.path.dirname(_lib_path), name))
        tried = []
        for cand in first + list(_candidates(None, base)):
            if os.sep in cand and not os.path.exists(cand):
                continue
            try:
                cdll = ctypes.CDLL(cand)
            except OSError as exc:
                tried.append("%s (%s)" % (cand, exc))
                continue
            try:
                _declare(cdll, _DURABLE_PROTOTYPES)
            except AttributeError as exc:
                tried.append("%s (missing function: %s)" % (cand, exc))
                continue
            del core
            _durable, _durable_path = cdll, _where(cdll, cand)
            return _durable
        raise LibraryNotFound(
            "pdwebhook: cannot load %s (the durable intake, next to %s). Tried: %s"
            % (name, _lib_path, "; ".join(tried)), tried)


def lib():
    """The loaded library (loading it on first use)."""
    return _lib if _lib is not None else load()


def library_path():
    """What the library was loaded from, or None before it is loaded."""
    return _lib_path


def durable_library_path():
    """What the durable library was loaded from, or None before it is loaded."""
    return _durable_path
