#!/usr/bin/env python3
"""tests/cookies.py PORT: a cookie round trip with Python's http.cookies.

GET /set: every Set-Cookie the server sends is parsed by http.cookies.SimpleCookie and
printed, one line per cookie sorted by name, as
    name|value|path|domain|expires|max-age|secure|httponly|samesite
Then the cookies that are still live (no Max-Age=0) go back in one Cookie header built
by SimpleCookie, plus one with a value SimpleCookie must quote, to GET /echo; the
server's answer (one "name=value" line per cookie it read) is printed after a line
"--". Exit 1 on any HTTP error.
"""
import http.client
import http.cookies
import sys

port = int(sys.argv[1])
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
conn.request("GET", "/set")
resp = conn.getresponse()
resp.read()
if resp.status != 200:
    sys.exit(1)
jar = http.cookies.SimpleCookie()
for line in resp.msg.get_all("Set-Cookie") or []:
    one = http.cookies.SimpleCookie()
    one.load(line)
    if not one:
        print("unparsed: " + line)
    jar.update(one)
for name in sorted(jar):
    m = jar[name]
    print("|".join([name, m.value, m["path"], m["domain"], m["expires"], str(m["max-age"]),
                    str(bool(m["secure"])), str(bool(m["httponly"])), m["samesite"]]))
back = http.cookies.SimpleCookie()
for name in sorted(jar):
    if str(jar[name]["max-age"]) != "0":
        back[name] = jar[name].value
back["spaced"] = "needs quoting"
header = "; ".join(back[name].OutputString() for name in sorted(back))
conn.request("GET", "/echo", headers={"Cookie": header})
resp = conn.getresponse()
body = resp.read().decode()
if resp.status != 200:
    sys.exit(1)
print("--")
print(body, end="")
