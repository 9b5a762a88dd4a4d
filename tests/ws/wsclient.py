#!/usr/bin/python3
"""tests/ws/wsclient.py: drive examples/websocket-echo with the `websockets` library.

    wsclient.py PORT SCENARIO

Scenarios (each prints "ok" and exits 0, or explains on stderr and exits 1):
  text        a text message with non-ASCII characters comes back equal
  binary      a binary message with every byte value comes back equal
  big         1 MiB binary and 1 MiB text messages come back equal
  fragmented  messages sent as several frames come back whole
  ping        a ping with a payload is answered by a pong
  close       a close with code 4001 and a reason is echoed back
  chat N      (examples/chat) N members join; each says one line; every member
              receives every line, prefixed with its sender's address
  idle N      open N connections, print "open N", hold them idle until a line
              (or EOF) arrives on stdin, close them all, print "closed"
Exit status 77: the websockets module cannot be imported.
"""
import asyncio
import sys

import wscommon  # exits 77 without python3-websockets
from wscommon import check, roundtrip, websockets

TIMEOUT = 20


def connect(port, **kw):
    return wscommon.connect(port, "/echo", TIMEOUT, **kw)


async def text(port):
    async with connect(port) as ws:
        await roundtrip(ws, "hello, wörld ✓ 😀")
        await roundtrip(ws, "")


async def binary(port):
    async with connect(port) as ws:
        await roundtrip(ws, bytes(range(256)) * 4)
        await roundtrip(ws, b"")


async def big(port):
    async with connect(port) as ws:
        await roundtrip(ws, bytes((i * 7 + (i >> 12)) & 0xFF for i in range(1 << 20)))
        await roundtrip(ws, ("0123456789abcdé" * 70000)[: 1 << 20])


async def fragmented(port):
    async with connect(port) as ws:
        # An iterable is sent as one message in several frames (opcode, then
        # continuations), with pings from the library allowed in between.
        await ws.send(["frag", "men", "ted ✓"])
        got = await ws.recv()
        check(got == "fragmented ✓", "got %r" % got)
        await ws.send([b"\x00\x01", b"", b"\x02" * 70000])
        got = await ws.recv()
        check(got == b"\x00\x01" + b"\x02" * 70000, "binary fragments differ")
        # A ping between two fragments of one message (RFC 6455 §5.4).
        async def parts():
            yield "a" * 10
            await ws.ping(b"mid")
            yield "b" * 10
        await ws.send(parts())
        got = await ws.recv()
        check(got == "a" * 10 + "b" * 10, "got %r" % got)


async def ping(port):
    async with connect(port) as ws:
        waiter = await ws.ping(b"are you there")
        await asyncio.wait_for(waiter, TIMEOUT)
        waiter = await ws.ping(b"")
        await asyncio.wait_for(waiter, TIMEOUT)


async def close(port):
    ws = await connect(port)
    await roundtrip(ws, "before close")
    await ws.close(code=4001, reason="bye")
    check(ws.close_code == 4001, "close code %r" % ws.close_code)
    check(ws.close_reason == "bye", "close reason %r" % ws.close_reason)


async def chat(port, n):
    members = [await connect(port) for _ in range(n)]
    for i, ws in enumerate(members):
        await ws.send("line %d" % i)
    for ws in members:
        got = sorted([(await ws.recv()).split("> ", 1)[1] for _ in range(n)])
        check(got == sorted("line %d" % i for i in range(n)), "member got %r" % got)
    await asyncio.gather(*(ws.close() for ws in members))


async def idle(port, n):
    conns = []
    for start in range(0, n, 100):
        batch = [connect(port, compression=None) for _ in range(start, min(n, start + 100))]
        conns += await asyncio.gather(*batch)
    # One round trip on each, so every one is fully established and then idle.
    await asyncio.gather(*(roundtrip(ws, "x") for ws in conns))
    print("open %d" % len(conns), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await asyncio.gather(*(ws.close() for ws in conns))
    check(all(ws.close_code == 1000 for ws in conns), "a close was not echoed")
    print("closed", flush=True)


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    port, name = int(sys.argv[1]), sys.argv[2]
    scenarios = {"text": text, "binary": binary, "big": big, "fragmented": fragmented,
                 "ping": ping, "close": close}
    if name == "idle":
        coro = idle(port, int(sys.argv[3]))
    elif name == "chat":
        coro = asyncio.wait_for(chat(port, int(sys.argv[3])), TIMEOUT)
    elif name in scenarios:
        coro = asyncio.wait_for(scenarios[name](port), TIMEOUT)
    else:
        print("unknown scenario %r" % name, file=sys.stderr)
        return 2
    try:
        asyncio.run(coro)
    except Exception as e:
        print("%s: %s: %r" % (name, type(e).__name__, e), file=sys.stderr)
        return 1
    if name != "idle":
        print("ok", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
