#!/usr/bin/env python3
"""A Pipedrive webhook receiver on Python's http.server, with pdwebhook doing the work.

    PYTHONPATH=bindings/python PDWEBHOOK_LIBRARY=build \\
        python3 examples/python/receiver.py --port 8080 --user pipedrive --password s3cret

Point a Pipedrive webhook at http://HOST:8080/ with HTTP auth pipedrive / s3cret (behind
HTTPS in production: Pipedrive sends the password in every request). Every event is
printed; a deal moving stage gets a line of its own.

Credentials come from --user/--password or $PDW_USER/$PDW_PASSWORD. --port 0 picks a free
port; the first line printed says which ("listening on http://127.0.0.1:PORT/").
"""
import argparse
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

try:
    import pdwebhook
except ImportError:  # run from a source tree without PYTHONPATH
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                    "..", "..", "bindings", "python"))
    import pdwebhook


def make_receiver(user, password):
    receiver = pdwebhook.Receiver(credentials=[(user, password)])

    @receiver.on("*.*")
    def every_event(event):
        changed = ",".join(event.changed) or "-"
        print("event %s (delivered as %s, v%d) id=%s attempt=%d changed=%s"
              % (event.name, event.delivered_name, event.version, event.entity_id,
                 event.attempt, changed), flush=True)

    @receiver.on("change.deal", changed="stage_id")
    def deal_moved(event):
        data, previous = event.data or {}, event.previous or {}
        print("deal %s moved from stage %s to stage %s"
              % (event.entity_id, previous.get("stage_id"), data.get("stage_id")), flush=True)

    return receiver


class Handler(BaseHTTPRequestHandler):
    receiver = None            # set in main()
    server_version = "pdwebhook-example"
    protocol_version = "HTTP/1.1"

    def _serve(self):
        url = urlsplit(self.path)
        # Refuse what needs no body (wrong method, media type, size, credentials) before
        # reading it, so that nobody can make us read a 2 GiB upload.
        early = self.receiver.check_head(self.command, self.headers, url.query)
        if early is not None:
            self.close_connection = True   # the body, if any, stays unread
            self._send(early, close=True)
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0                     # the receiver refuses a malformed one itself
        body = self.rfile.read(length) if length > 0 else b""
        self._send(self.receiver.handle(self.command, self.headers, body, url.query))

    def _send(self, response, close=False):
        status, headers, body = response
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_POST = do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = _serve

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--user", default=os.environ.get("PDW_USER"))
    ap.add_argument("--password", default=os.environ.get("PDW_PASSWORD"))
    ap.add_argument("--library", help="libpdwebhook.so.N or its directory "
                                      "(default: $PDWEBHOOK_LIBRARY, then the system)")
    args = ap.parse_args(argv)
    if not args.user or not args.password:
        ap.error("give --user and --password (or $PDW_USER and $PDW_PASSWORD)")
    if args.library:
        pdwebhook.load(args.library)

    Handler.receiver = make_receiver(args.user, args.password)
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    host, port = server.server_address[:2]
    print("listening on http://%s:%d/ (libpdwebhook %s)" % (host, port, pdwebhook.version()),
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
