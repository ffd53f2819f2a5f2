"""Shared by the tests: fixtures, requests, the layout helper."""
import base64
import json
import os
import subprocess
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
FIXTURES = os.environ.get("PDW_FIXTURES") or os.path.join(ROOT, "tests", "fixtures")

USER, PASSWORD = "pipedrive", "s3cret"


def basic(user=USER, password=PASSWORD):
    raw = ("%s:%s" % (user, password)).encode("utf-8")
    return "Basic " + base64.b64encode(raw).decode("ascii")


def headers(body=b"", auth=True, content_type="application/json", **extra):
    h = [("Content-Type", content_type)] if content_type else []
    if auth:
        h.append(("Authorization", basic() if auth is True else auth))
    h.append(("Content-Length", str(len(body))))
    h.extend(extra.items())
    return h


def fixture(name):
    with open(os.path.join(FIXTURES, name), "rb") as f:
        return f.read()


def expected_rows():
    """tests/fixtures/expected.tsv as dicts (the header line names the columns)."""
    path = os.path.join(FIXTURES, "expected.tsv")
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    cols = lines[0].lstrip("# ").split("\t")
    return [dict(zip(cols, line.split("\t"))) for line in lines[1:]
            if line and not line.startswith("#")]


def layout():
    """What the C compiler says (bindings/python/tests/layout.c), or skip."""
    helper = os.environ.get("PDW_LAYOUT_HELPER")
    if not helper:
        raise unittest.SkipTest("PDW_LAYOUT_HELPER not set (ctest sets it)")
    out = subprocess.run([helper], check=True, stdout=subprocess.PIPE).stdout
    return json.loads(out.decode("utf-8"))
