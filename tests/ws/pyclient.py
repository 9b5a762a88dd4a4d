#!/usr/bin/python3
"""tests/ws/pyclient.py: drive tests/test-websocket's server with python3-websockets.

    pyclient.py PORT SCENARIO

Paths of that server: /echo (echo, permessage-deflate accepted, a text "close-me" makes
the server close with 4000 "bye"), /plain (no deflate), /small (1 KiB limit).
Scenarios print "ok" and exit 0, or explain on stderr and exit 1:
  sizes      text and binary of 0 B .. 16 MiB come back equal (deflate off for 16 MiB)
  fragments  fragmented messages with pings in between come back whole; ping/pong
  close      client close 4001 is echoed; the server's 4000 "bye" is received
  deflate    permessage-deflate negotiated on /echo, not on /plain; both echo
  oversize   a 2 KiB message to /small is answered with close 1009
  badutf8    a text message whose UTF-8 breaks across its first two fragments is
             failed with 1007 before its last fragment is sent
Exit 77: the websockets module cannot be imported.
"""
import asyncio
import sys

import wscommon  # exits 77 without python3-websockets
from wscommon import check, roundtrip, websockets

TIMEOUT = 30


def connect(port, path="/echo", **kw):
    return wscommon.connect(port, path, TIMEOUT, **kw)


def payload(n):
    return bytes((i * 7 + (i >> 12)) & 0xFF for i in range(n))


async def sizes(port):
    async with connect(port) as ws:
        for n in (0, 1, 125, 126, 65535, 65536, 1 << 20):
            await roundtrip(ws, payload(n))
            await roundtrip(ws, ("ü✓" * n)[:n])
    async with connect(port, "/plain", compression=None) as ws:
        big = payload(1 << 16) * 256  # 16 MiB, the default limit
        await roundtrip(ws, big)
        await roundtrip(ws, "é" * (8 << 20))  # 16 MiB of UTF-8


async def fragments(port):
    async with connect(port) as ws:
        await ws.send(["frag", "men", "ted ✓"])
        check(await ws.recv() == "fragmented ✓", "text fragments")
        await ws.send([b"\x00\x01", b"", b"\x02" * 70000])
        check(await ws.recv() == b"\x00\x01" + b"\x02" * 70000, "binary fragments")

        async def parts():
            yield "a" * 10
            await ws.ping(b"mid")
            yield "b" * 10
        await ws.send(parts())
        check(await ws.recv() == "a" * 10 + "b" * 10, "ping between fragments")
        pong = await ws.ping(b"are you there")
        await asyncio.wait_for(pong, TIMEOUT)


async def close(port):
    ws = await connect(port)
    await roundtrip(ws, "before close")
    await ws.close(code=4001, reason="bye now")
    check(ws.close_code == 4001, "close code %r" % ws.close_code)
    check(ws.close_reason == "bye now", "close reason %r" % ws.close_reason)
    ws = await connect(port)
    await ws.send("close-me")
    try:
        await ws.recv()
        raise AssertionError("a message instead of the close")
    except websockets.exceptions.ConnectionClosed:
        pass  # 4000 is neither 1000 nor 1001: the library calls it an error
    check(ws.close_code == 4000 and ws.close_reason == "bye",
          "server close %r %r" % (ws.close_code, ws.close_reason))


async def deflate(port):
    async with connect(port) as ws:
        ext = [e.name for e in ws.extensions]
        check(ext == ["permessage-deflate"], "extensions on /echo: %r" % ext)
        for i in range(5):  # context takeover across messages
            await roundtrip(ws, "compress me please " * (50 + i))
            await roundtrip(ws, payload(100000))
    async with connect(port, "/plain") as ws:
        check(ws.extensions == [], "extensions on /plain: %r" % ws.extensions)
        await roundtrip(ws, "plain " * 100)


async def oversize(port):
    async with connect(port, "/small") as ws:
        await ws.send(b"x" * 2048)
        try:
            await ws.recv()
            raise AssertionError("echoed a message over the limit")
        except websockets.exceptions.ConnectionClosedError:
            pass
        check(ws.close_code == 1009, "close code %r" % ws.close_code)


async def badutf8(port):
    async with connect(port, "/plain", compression=None) as ws:
        # "ok" then 0xC3, a lead byte whose continuation 0x28 ("(") is not one: invalid
        # only once the second fragment arrives; the message never ends.
        await ws.write_frame(False, 0x1, b"ok\xc3")
        await ws.write_frame(False, 0x0, b"(more")
        try:
            await asyncio.wait_for(ws.recv(), TIMEOUT)
            raise AssertionError("a message came back")
        except websockets.exceptions.ConnectionClosedError:
            pass
        check(ws.close_code == 1007, "close code %r" % ws.close_code)


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    port, name = int(sys.argv[1]), sys.argv[2]
    scenarios = {"sizes": sizes, "fragments": fragments, "close": close,
                 "deflate": deflate, "oversize": oversize, "badutf8": badutf8}
    if name not in scenarios:
        print("unknown scenario %r" % name, file=sys.stderr)
        return 2
    try:
        asyncio.run(asyncio.wait_for(scenarios[name](port), 120))
    except Exception as e:
        print("%s: %s: %r" % (name, type(e).__name__, e), file=sys.stderr)
        return 1
    print("ok", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
