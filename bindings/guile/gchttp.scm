;;; (gchttp): gchttp's HTTP/1.1 server for Guile 3.0.
;;;
;;; A thin module over the C extension libguile-gchttp (gchttp-guile.c), plus a
;;; binary port over a hijacked connection.  See README.md next to this file.

(define-module (gchttp)
  #:use-module (rnrs bytevectors)
  #:use-module (rnrs io ports)
  #:export (gchttp-serve
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

(load-extension "libguile-gchttp" "init_gchttp")

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
