"""tests/ws/wscommon.py: what the python3-websockets clients share (wsclient.py for
examples/websocket-echo and examples/chat, pyclient.py for tests/test-websocket).

Importing it exits 77 (automake's SKIP) when the websockets module cannot be imported.
"""
import sys

try:
    import websockets
except ImportError as e:  # pragma: no cover
    print("SKIP: python3-websockets not importable: %s" % e, file=sys.stderr)
    sys.exit(77)


def connect(port, path, timeout, **kw):
    """A client connection to ws://127.0.0.1:PORT/PATH: no size limit, no keepalive
    pings, open and close bounded by timeout seconds (kw overrides)."""
    kw.setdefault("max_size", None)
    kw.setdefault("ping_interval", None)
    kw.setdefault("open_timeout", timeout)
    kw.setdefault("close_timeout", timeout)
    return websockets.connect("ws://127.0.0.1:%d%s" % (port, path), **kw)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


async def roundtrip(ws, msg):
    """Send msg and expect it back, same type and bytes."""
    await ws.send(msg)
    got = await ws.recv()
    check(type(got) is type(msg), "type %s != %s" % (type(got), type(msg)))
    check(got == msg, "echo differs (%d vs %d bytes)" % (len(got), len(msg)))
