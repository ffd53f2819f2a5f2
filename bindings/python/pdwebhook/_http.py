"""What the WSGI and ASGI adapters share: which object answers, status lines, logging."""
import http
import logging

log = logging.getLogger("pdwebhook.http")


def durable(target):
    """True for an :class:`~pdwebhook.Intake` (begin/finish), False for a Receiver."""
    from ._intake import Intake
    if isinstance(target, Intake):
        return True
    from . import Receiver
    if isinstance(target, Receiver):
        return False
    raise TypeError("pdwebhook: the adapter needs a pdwebhook.Receiver or pdwebhook.Intake, "
                    "not %r" % (target,))


def status_line(status):
    try:
        return "%d %s" % (status, http.HTTPStatus(status).phrase)
    except ValueError:
        return "%d Unknown" % status


def path_matches(path, want):
    if want is None:
        return True
    return (path or "/").rstrip("/") == want.rstrip("/")


def finished(response, peer, on_response):
    """Every answer goes through here: the peer is kept on the response (the C request
    has no peer member: the adapter is where it is known), refusals are logged with it,
    and ``on_response(response, peer)`` is told."""
    response.peer = peer
    if response.status >= 300 or response.errors:
        log.info("%s %s from %s (%s)", response.status, response.reason_name, peer,
                 response.event or "-")
    if on_response is not None:
        try:
            on_response(response, peer)
        except Exception:
            log.exception("pdwebhook: on_response raised")
    return response
