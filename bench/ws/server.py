#!/usr/bin/python3
"""bench/ws/server.py: python3-websockets' server for bench/ws/run (same protocol as
ws-server.c: echo; a text "bcast<payload>" sends <payload> to every client)."""
import asyncio
import websockets

CLIENTS = set()


async def handler(ws, path=None):
    CLIENTS.add(ws)
    try:
        async for msg in ws:
            if isinstance(msg, str) and msg.startswith("bcast"):
                websockets.broadcast(CLIENTS, msg[5:])
            else:
                await ws.send(msg)
    finally:
        CLIENTS.discard(ws)


async def main():
    async with websockets.serve(handler, "127.0.0.1", 0, compression=None, max_size=None,
                                ping_interval=None) as server:
        port = server.sockets[0].getsockname()[1]
        print("listening on port %d" % port, flush=True)
        await asyncio.Future()


asyncio.run(main())
