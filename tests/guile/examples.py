#!/usr/bin/env python3
"""tests/guile/examples.py: the "Web Examples" programs of Guile's manual, run unchanged
over run-server's 'http and 'gchttp back ends, must answer the same requests the same way.

Usage: examples.py GUILE SRCDIR CURL. Each program runs in its own Guile process
(tests/guile/run-example.scm) once per back end; the same requests (python3 http.client,
keep-alive and not, HEAD, a POST with a body, and curl) are sent to both, and the status,
the headers that matter (content-type, content-length) and the body must be equal.
Prints PASS/FAIL lines; exit 1 on any failure.
"""
import http.client
import os
import subprocess
import sys

GUILE, SRCDIR, CURL = sys.argv[1], os.path.abspath(sys.argv[2]), sys.argv[3]
HOST = "example.org"  # sent by every client, so that echoed headers do not carry the port

failures = 0


def check(name, ok, detail=""):
    global failures
    print(("PASS" if ok else "FAIL") + ": " + name + (" (%s)" % detail if detail and not ok else ""))
    sys.stdout.flush()
    if not ok:
        failures += 1


def start(example, impl):
    p = subprocess.Popen([GUILE, "--no-auto-compile", os.path.join(SRCDIR, "tests/guile/run-example.scm"),
                          os.path.join(SRCDIR, "tests/guile", example), impl],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    if not line.startswith("port "):
        p.kill()
        raise RuntimeError("%s over %s did not start: %r %s" % (example, impl, line, p.stderr.read()))
    return p, int(line.split()[1])


def answer(resp):
    body = resp.read()
    return (resp.status, resp.getheader("content-type"), resp.getheader("content-length"), body)


def python_requests(port):
    out = []
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    # Two requests on one keep-alive connection, then HEAD, then a POST with a body.
    for method, path, body, extra in [("GET", "/", None, {}),
                                      ("GET", "/hacker?x=1", None, {"Accept": "text/html"}),
                                      ("HEAD", "/", None, {}),
                                      ("POST", "/form", b"a=1&b=2",
                                       {"Content-Type": "application/x-www-form-urlencoded"})]:
        headers = {"Host": HOST, "User-Agent": "examples.py"}
        headers.update(extra)
        c.request(method, path, body=body, headers=headers)
        out.append((method, path) + answer(c.getresponse()))
    c.close()
    return out


def curl_request(port):
    if not CURL:
        return None
    r = subprocess.run([CURL, "-s", "-D", "-", "-H", "Host: " + HOST, "-A", "curl-test",
                        "http://127.0.0.1:%d/curl" % port],
                       capture_output=True, timeout=20)
    head, _, body = r.stdout.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    hs = {}
    for l in lines[1:]:
        k, _, v = l.partition(b":")
        hs[k.strip().lower()] = v.strip()
    return (status, hs.get(b"content-type"), hs.get(b"content-length"), body)


for example in ["hello.scm", "debug-page.scm"]:
    answers = {}
    for impl in ["http", "gchttp"]:
        p, port = start(example, impl)
        try:
            answers[impl] = (python_requests(port), curl_request(port))
        finally:
            p.kill()
            p.wait()
    (ph, ch), (pg, cg) = answers["http"], answers["gchttp"]
    for a, b in zip(ph, pg):
        check("%s: %s %s: same status, content-type, content-length and body over 'http and 'gchttp"
              % (example, a[0], a[1]), a == b, "http %r, gchttp %r" % (a, b))
    check("%s: a GET answers 200 with a body" % example, ph[0][2] == 200 and len(ph[0][5]) > 0, repr(ph[0]))
    if CURL:
        check("%s: curl gets the same answer from both" % example, ch == cg, "http %r, gchttp %r" % (ch, cg))

sys.exit(1 if failures else 0)
