#!/usr/bin/env python3
"""Write the seed corpora in tests/fuzz/corpus/<target>/ from the fixtures and the error
catalogue (docs/ERRORS.md). Run it again after adding fixtures; the output is checked in.
Seeds for bugs found by fuzzing are added by hand as corpus/<target>/bug-*."""
import base64, glob, os, struct

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, '..', 'fixtures')
OUT = os.path.join(HERE, 'corpus')


def write(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)


fixtures = {}
for p in sorted(glob.glob(os.path.join(FIX, 'v*'))):
    fixtures[os.path.basename(p)] = open(p, 'rb').read()

V2 = (b'{"meta":{"version":"2.0","action":"change","entity":"deal","id":"e1",'
      b'"entity_id":"7","webhook_id":"3","attempt":1,"timestamp":"2024-01-01T00:00:00Z"},'
      b'"data":{"stage_id":2},"previous":{"stage_id":1}}')
V1 = (b'{"v":1,"meta":{"v":1,"action":"updated","object":"deal","id":5,"user_id":2,'
      b'"timestamp":1492654463},"retry":0,"current":{"id":5,"stage_id":2},'
      b'"previous":{"id":5,"stage_id":1}}')

# The catalogue's bodies (docs/ERRORS.md), small enough for a corpus.
bad_bodies = {
    'truncated': V2[:-7],
    'trailing-garbage': V2 + b' x',
    'invalid-utf8': b'{"meta":{"v":"\xc3\x28"}}',
    'overlong-utf8': b'{"a":"\xc0\xaf"}',
    'surrogate-escape': b'{"a":"\\ud800"}',
    'nul-in-string': b'{"a":"x\x00y"}',
    'nul-escape': b'{"a":"x\\u0000y"}',
    'nul-after-number': b'{"a":1\x00}',
    'duplicate-keys': b'{"meta":{},"meta":{}}',
    'duplicate-escaped-keys': b'{"a":1,"\\u0061":2}',
    'deep-3000': b'[' * 3000 + b']' * 3000,
    'deep-object-600': b'{"a":' * 600 + b'1' + b'}' * 600,
    'huge-number': b'{"a":1' + b'0' * 400 + b'}',
    'huge-exponent': b'{"a":1e99999}',
    'huge-int': b'{"a":123456789012345678901234567890}',
    'top-array': b'[1,2]',
    'top-string': b'"meta"',
    'top-number': b'42',
    'empty': b'',
    'ws-only': b' \n\t',
    'no-meta': b'{"data":{}}',
    'meta-array': b'{"meta":[]}',
    'meta-no-version': b'{"meta":{"action":"change","entity":"deal"}}',
    'meta-bad-version': b'{"meta":{"version":"3.0","action":"change","entity":"deal"}}',
    'meta-bad-action': V2.replace(b'"change"', b'"frobbed"'),
    'meta-action-number': V2.replace(b'"change"', b'7'),
    'meta-bad-object': V2.replace(b'"deal"', b'"de-al"'),
    'meta-id-object': V2.replace(b'"entity_id":"7"', b'"entity_id":{}'),
    'meta-id-long': V2.replace(b'"entity_id":"7"', b'"entity_id":"' + b'9' * 80 + b'"'),
    'meta-attempt-string': V2.replace(b'"attempt":1', b'"attempt":"x"'),
    'meta-attempt-huge': V2.replace(b'"attempt":1', b'"attempt":99999999999999999999'),
    'meta-timestamp-bad': V2.replace(b'2024-01-01T00:00:00Z', b'2024-13-45T99:00:00Z'),
    'v1-retry-neg': V1.replace(b'"retry":0', b'"retry":-1'),
    'v1-user': (b'{"v":1,"meta":{"v":1,"action":"updated","object":"user","id":5,'
                b'"timestamp":1},"current":[{"id":5,"name":"a"}],"previous":[{"id":5,"name":"b"}]}'),
    'escapes': b'{"a":"\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00"}',
}

# ---- event ----
for name, data in fixtures.items():
    write('event', 'fixture-' + name, data)
write('event', 'min-v2', V2)
write('event', 'min-v1', V1)
for name, data in bad_bodies.items():
    write('event', 'err-' + name, data)

# ---- dom ----
# The differential compares DOMs of accepted bodies: mostly valid seeds, of every shape the
# builder handles (escapes, number shapes, depth, white space, NUL after a scalar).
for name, data in list(fixtures.items())[::4]:
    write('dom', 'fixture-' + name, data)
write('dom', 'min-v2', V2)
write('dom', 'min-v1', V1)
dom_seeds = {
    'escapes': bad_bodies['escapes'],
    'escaped-keys': b'{"\\u0061\\n":1,"k\\"":[],"\\ud83d\\ude00":{}}',
    'numbers': (b'[0,-0,-0.0,1.0,1e2,1E+2,1e-2,1e308,1.7976931348623157e308,5e-324,1e-400,'
                b'0.1,123456789012345678,9223372036854775807,-9223372036854775808]'),
    'utf8-escapes': b'{"caf\\u00e9":"\\u20ac \\ud83d\\ude00"}',
    'raw-utf8': '{"caf\u00e9":"\u20ac \U0001F600 \\u0080"}'.encode('utf-8'),
    'nested-empty': b'{"a":{},"b":[],"c":[[],{}],"d":{"e":{"f":[[[]]]}}}',
    'deep-100': b'[' * 100 + b'{"a":1}' + b']' * 100,
    'ws': b' \t\r\n{ "a" : [ 1 , true , null ] , "b" : { } } \n',
    'nul-after-number': bad_bodies['nul-after-number'],
    'nul-after-literal': b'[true\x00,null\x00]',
    'top-scalar': b'-0.0',
    'long-escape': b'{"s":"' + b'\\u00e9' * 100 + b'"}',
}
for name, data in dom_seeds.items():
    write('dom', name, data)

# ---- receiver ----
def req(flags, method, headers, body, query=None):
    lines = [b'%s: %s' % (k, v) for k, v in headers]
    if query is not None:
        lines.append(b'?' + query)
    block = b'\n'.join(lines)
    return bytes([flags, len(method)]) + struct.pack('>H', len(block)) + method + block + body

AUTH = b'Basic ' + base64.b64encode(b'pipedrive:s3cret')
def good(body, extra=()):
    return [(b'Content-Type', b'application/json'), (b'Authorization', AUTH),
            (b'Content-Length', str(len(body)).encode())] + list(extra)

for name, data in list(fixtures.items())[::3]:
    if len(data) < 3000:
        write('receiver', 'fixture-' + name, req(0, b'POST', good(data), data))
write('receiver', 'ok-v2', req(0, b'POST', good(V2), V2))
write('receiver', 'ok-v1', req(0, b'POST', good(V1), V1))
write('receiver', 'accept-hook', req(0x02, b'POST', good(V2), V2))
write('receiver', 'accept-hook-fails', req(0x06, b'POST', good(V2), V2))
write('receiver', 'handler-fails-500', req(0x44, b'POST', good(V2), V2))
write('receiver', 'query-token', req(0x10, b'POST', good(V2), V2, b'a=1&token=tok'))
write('receiver', 'query-token-twice', req(0x10, b'POST', good(V2), V2, b'token=tok&token=tok'))
write('receiver', 'method-get', req(0, b'GET', good(V2), V2))
write('receiver', 'method-lower', req(0, b'post', good(V2), V2))
write('receiver', 'no-content-type', req(0, b'POST', good(V2)[1:], V2))
write('receiver', 'no-content-type-allowed', req(1, b'POST', good(V2)[1:], V2))
write('receiver', 'content-type-charset',
      req(0, b'POST', [(b'content-type', b' Application/JSON; charset=utf-8')] + good(V2)[1:], V2))
write('receiver', 'content-type-text', req(0, b'POST', [(b'Content-Type', b'text/plain')] + good(V2)[1:], V2))
write('receiver', 'two-content-lengths', req(0, b'POST', good(V2) + [(b'content-length', b'5')], V2))
write('receiver', 'content-length-bad', req(0, b'POST', good(V2)[:2] + [(b'Content-Length', b'12a')], V2))
write('receiver', 'body-longer-than-declared', req(0, b'POST', good(V2)[:2] + [(b'Content-Length', b'10')], V2))
write('receiver', 'declared-over-limit', req(0x20, b'POST', good(V2)[:2] + [(b'Content-Length', b'999999')], V2))
write('receiver', 'body-over-limit', req(0x20, b'POST', good(V2)[:2], V2 + b' ' * 300))
write('receiver', 'no-auth', req(0, b'POST', [good(V2)[0], good(V2)[2]], V2))
write('receiver', 'two-auth', req(0, b'POST', good(V2) + [(b'Authorization', AUTH)], V2))
write('receiver', 'auth-wrong-403', req(0x08, b'POST', [good(V2)[0], (b'Authorization', b'Basic ' + base64.b64encode(b'pipedrive:nope'))], V2))
write('receiver', 'auth-bad-base64', req(0, b'POST', [good(V2)[0], (b'Authorization', b'Basic cGlwZWRyaXZlOnMzY3JldA=')], V2))
write('receiver', 'auth-no-colon', req(0, b'POST', [good(V2)[0], (b'Authorization', b'Basic ' + base64.b64encode(b'pipedrive'))], V2))
write('receiver', 'auth-bearer', req(0, b'POST', [good(V2)[0], (b'Authorization', b'Bearer abc')], V2))
write('receiver', 'header-no-colon', req(0, b'POST', good(V2) + [(b'X-Odd', b'')], V2).replace(b'X-Odd: ', b'X-Odd'))
for name in ('truncated', 'duplicate-keys', 'invalid-utf8', 'top-array', 'no-meta', 'meta-bad-action', 'deep-object-600'):
    b = bad_bodies[name]
    write('receiver', 'err-' + name, req(0, b'POST', good(b), b))

# ---- auth ----
def auth0(header, query=b''):
    return bytes([0, min(len(header), 255)]) + header[:255] + query
write('auth', 'basic-ok', auth0(AUTH))
write('auth', 'basic-ok-token', auth0(AUTH, b'token=tok+en'))
write('auth', 'basic-ok-token-pct', auth0(AUTH, b'x=1&token=tok%20en'))
write('auth', 'basic-rotation', auth0(b'basic  ' + base64.b64encode(b'old:pw:with:colons') + b' \t'))
write('auth', 'basic-wrong', auth0(b'Basic ' + base64.b64encode(b'pipedrive:s3cre')))
write('auth', 'basic-no-colon', auth0(b'Basic ' + base64.b64encode(b'pipedrive')))
write('auth', 'basic-bad-padding', auth0(b'Basic cGlwZWRyaXZlOnMzY3JldB=='))
write('auth', 'basic-bad-char', auth0(b'Basic cGlwZWRya*ZlOnMzY3JldA=='))
write('auth', 'basic-param', auth0(b'Basic ' + base64.b64encode(b'a:b') + b', realm=x'))
write('auth', 'basic-tab', auth0(b'Basic\t' + base64.b64encode(b'a:b')))
write('auth', 'bearer', auth0(b'Bearer x'))
write('auth', 'token-bad-pct', auth0(AUTH, b'token=%zz'))
write('auth', 'token-trailing-pct', auth0(AUTH, b'token=ab%4'))
write('auth', 'roundtrip-ok', b'\x01pipedrive:s3cret')
write('auth', 'roundtrip-colons', b'\x01old:pw:with:colons')
write('auth', 'roundtrip-empty-user', b'\x01:s3cret')
write('auth', 'b64-pad1', b'\x02QUI=')
write('auth', 'b64-pad2', b'\x02QQ==')
write('auth', 'b64-nonzero-bits', b'\x02QR==')
write('auth', 'b64-inner-pad', b'\x02QQ==QUJD')
write('auth', 'b64-all-pad', b'\x02====')

# ---- router ----
write('router', 'basic', b'*.*\nchange.deal\tstage_id\nmerged.*\ncreate.person\n')
write('router', 'v1-words', b'added.deal\nupdated.*\ndeleted.lead\nmerged.organization\n')
write('router', 'fields', b'change.deal\tcustom_fields\nchange.deal\tcustom_fields.abc\n*.deal\tstage_id\n*.person\tname\n')
write('router', 'invalid', b'\n.\n*.\n.*\nchange\nchange.deal.x\nfrob.deal\nchange.de-al\nchange.' + b'x' * 49 + b'\n*.*\t\n')
write('router', 'many-objects', b''.join(b'change.obj%d\n' % i for i in range(40)))
write('router', 'max-name', b'change.' + b'y' * 48 + b'\n*.' + b'Z' * 48 + b'\n')
write('router', 'nul', b'change.de\x00al\n*.*\n')

# ---- spool ----
def deliv(i, key=b'2:deal:change:e1:2024', body=V2, ms=1700000000000):
    return (b'\x01' + i.to_bytes(8, 'little') + ms.to_bytes(8, 'little', signed=True) +
            len(key).to_bytes(2, 'little') + key + body)
def marker(floor, ids):
    return b'\x02' + floor.to_bytes(8, 'little') + len(ids).to_bytes(4, 'little') + b''.join(
        i.to_bytes(8, 'little') for i in ids)
def chunks(*payloads):
    return b''.join(len(p).to_bytes(2, 'little') + p for p in payloads)
write('spool', 'framed-one', b'\x01\x00' + chunks(deliv(1)))
write('spool', 'framed-three-one-handled', b'\x01\x00' + chunks(deliv(1), deliv(2, body=V1), deliv(3), marker(3, [2])))
write('spool', 'framed-two-segments', b'\x03\x80' + chunks(deliv(1), deliv(2), marker(2, [1]), deliv(3)))
write('spool', 'framed-small-segments', b'\x05\x00' + chunks(*[deliv(i) for i in range(1, 8)], marker(7, [1, 2, 3])))
write('spool', 'framed-marker-unknown-id', b'\x01\x00' + chunks(deliv(1), marker(9, [5, 1, 1])))
write('spool', 'framed-short-payloads', b'\x01\x00' + chunks(b'', b'\x01', b'\x02' + b'\x00' * 12, deliv(1)[:19]))
write('spool', 'framed-huge-id', b'\x01\x00' + chunks(deliv(2**64 - 2), deliv(3)))
write('spool', 'framed-huge-count', b'\x01\x00' + chunks(deliv(1), b'\x02' + (1).to_bytes(8, 'little') + (0xFFFFFFFF).to_bytes(4, 'little')))
raw = b''.join(b'PDWJ' + len(p).to_bytes(4, 'little') + b'\x00\x00\x00\x00' + p for p in [deliv(1)])
write('spool', 'raw-bad-crc', b'\x00\x00' + raw)
write('spool', 'raw-torn', b'\x00\x00' + raw[:30])
write('spool', 'raw-garbage', b'\x00\x00' + b'PDWJ\xff\xff\xff\xff' + b'x' * 40)
# a last segment named above ids it holds (flag 0x20: journal-<2 + byte 1>): the stale
# records of a reused file past its end; a spare file (flag 0x40) taken by a rotation
write('spool', 'framed-recycled-stale-tail', b'\x21\x08' + chunks(
    deliv(10), deliv(11), marker(11, [10]), deliv(3), deliv(4), marker(4, [3])))
write('spool', 'framed-recycled-stale-marker-first', b'\x21\x14' + chunks(
    marker(5, [1, 2]), deliv(3), deliv(22), deliv(23)))
write('spool', 'framed-recycled-out-of-order', b'\x21\x00' + chunks(
    deliv(5), deliv(6), deliv(6), deliv(7)))
write('spool', 'framed-recycled-name-minus-one', b'\x21\x06' + chunks(deliv(7), deliv(8), deliv(6)))
write('spool', 'framed-recycled-two-segments', b'\x23\x60' + chunks(
    deliv(1), deliv(2), marker(2, [1]), deliv(98), deliv(99), deliv(2), deliv(100)))
write('spool', 'framed-spare-small-segments', b'\x45\x00' + chunks(
    *[deliv(i) for i in range(1, 8)], marker(7, [1, 2, 3, 4, 5])))
