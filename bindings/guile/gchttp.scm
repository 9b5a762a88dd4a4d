;;; (gchttp): gchttp's HTTP/1.1 server for Guile 3.0.
;;;
;;; A thin module over the C extension libguile-gchttp (gchttp-guile.c), plus a
;;; binary port over a hijacked connection.  See README.md next to this file.

(define-module (gchttp)
  #:use-module (rnrs bytevectors)
  #:use-module (rnrs io ports)
  #:use-module (ice-9 exceptions)
  #:export (&gchttp-error
            gchttp-error?
            gchttp-error-code
            gchttp-serve
            gchttp-server-port
            gchttp-close
            gchttp-server-stats
            gchttp-request-method
            gchttp-request-target
            gchttp-request-proto
            gchttp-request-host
            gchttp-request-remote-addr
            gchttp-request-headers
            gchttp-request-header
            gchttp-request-body
            gchttp-request-body-string
            gchttp-request-probe
            gchttp-probe-collected?
            gchttp-hijack
            gchttp-conn-read!
            gchttp-conn-write!
            gchttp-conn-close
            gchttp-conn-remote-addr
            gchttp-conn->port
            gchttp-gc-info
            gchttp-gc-collect))

(define-exception-type &gchttp-error &error
  make-gchttp-error gchttp-error?
  (code gchttp-error-code))

(define (%raise-gchttp-error who code message)
  "Raise a &gchttp-error with origin WHO, CODE (a symbol such as GH_EADDRINUSE, or #f
for a misuse with no number) and the readable MESSAGE.  Called by the extension."
  (raise-exception
   (make-exception (make-gchttp-error code)
                   (make-exception-with-origin who)
                   (make-exception-with-message
                    (if code (format #f "~a (~a)" message code) message))
                   (make-exception-with-irritants '()))))

(load-extension "libguile-gchttp" "init_gchttp")

(define-syntax-rule (document! (proc doc) ...)
  (begin (set-procedure-property! proc 'documentation doc) ...))

;; The extension's procedures (gchttp-guile.c) and the condition's accessors get their
;; documentation here.
(document!
 (gchttp-serve "(gchttp-serve host port handler [max-workers]) -> server.  Listen on
HOST:PORT (0 picks a port) and call (HANDLER request) on gchttp's worker threads for
each request; it returns (values status headers body) or a list of the three.  Raises
a &gchttp-error when the server cannot start.")
 (gchttp-server-port "(gchttp-server-port server) -> the port SERVER listens on.")
 (gchttp-close "(gchttp-close server): close listeners and connections and join
SERVER's threads.")
 (gchttp-server-stats "(gchttp-server-stats server) -> an alist of live counters
(accepted, requests, hijacked, closed, open-conns, workers, threads).")
 (gchttp-request-method "(gchttp-request-method req) -> the method as sent, a string.")
 (gchttp-request-target "(gchttp-request-target req) -> the request-target as sent.")
 (gchttp-request-proto "(gchttp-request-proto req) -> the protocol, e.g. \"HTTP/1.1\".")
 (gchttp-request-host "(gchttp-request-host req) -> the host (absolute-form authority or
Host header).")
 (gchttp-request-remote-addr "(gchttp-request-remote-addr req) -> the peer, \"ip:port\".")
 (gchttp-request-headers "(gchttp-request-headers req) -> the header fields in received
order, an alist of strings.")
 (gchttp-request-header "(gchttp-request-header req name) -> the first value of header
NAME (case-insensitive), or #f.")
 (gchttp-request-body "(gchttp-request-body req [max]) -> the whole body as a bytevector,
at most MAX bytes (1 MiB); a &gchttp-error GH_EBODYLIMIT beyond.")
 (gchttp-request-probe "(gchttp-request-probe req) -> a probe watching REQ's C request
and response without retaining them (see gchttp-probe-collected?).")
 (gchttp-probe-collected? "(gchttp-probe-collected? probe) -> #t once the collector found
the probed request and response unreachable.")
 (gchttp-hijack "(gchttp-hijack req [status [headers]]) -> a connection that belongs to
the handler, after sending STATUS and HEADERS when given (e.g. 101).")
 (gchttp-conn-read! "(gchttp-conn-read! conn bv start count) -> bytes read into BV at
START, 0 at the end of the stream.")
 (gchttp-conn-write! "(gchttp-conn-write! conn data [start count]) -> bytes written (a
string or a bytevector), flushed to the peer.")
 (gchttp-conn-close "(gchttp-conn-close conn) -> #t if the hijacked connection was open
and is now closed.")
 (gchttp-conn-remote-addr "(gchttp-conn-remote-addr conn) -> the peer, \"ip:port\".")
 (gchttp-gc-info "(gchttp-gc-info) -> how the shared collector is set up (an alist).")
 (gchttp-gc-collect "(gchttp-gc-collect [n]) -> run N (2) full collections with gchttp's
stack scrubbing.")
 (gchttp-error? "(gchttp-error? obj) -> #t if OBJ is a &gchttp-error condition.")
 (gchttp-error-code "(gchttp-error-code e) -> the gchttp code of the &gchttp-error E, a
symbol such as GH_EADDRINUSE, or #f for a misuse with no number."))

(define* (gchttp-request-body-string req #:optional (max (* 1024 1024)))
  "The request body decoded as UTF-8."
  (utf8->string (gchttp-request-body req max)))

(define (gchttp-conn->port conn)
  "A binary input/output port over a hijacked connection.  Reads come from the
connection's buffered reader (bytes sent after the request head first); every write
is flushed to the peer.  Closing the port closes the connection."
  (make-custom-binary-input/output-port
   "gchttp-conn"
   (lambda (bv start count) (gchttp-conn-read! conn bv start count))
   (lambda (bv start count) (gchttp-conn-write! conn bv start count))
   #f #f
   (lambda () (gchttp-conn-close conn))))
