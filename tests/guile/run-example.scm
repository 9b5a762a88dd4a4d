;;; tests/guile/run-example.scm EXAMPLE IMPL: run a program of Guile's manual unchanged,
;;; with its (run-server handler) call served by back end IMPL ('http or 'gchttp) on a
;;; socket bound to 127.0.0.1:0.  Prints "port N" once listening; runs until killed.
(use-modules ((web server) #:select ((run-server . %run-server))))

(define impl (string->symbol (caddr (command-line))))
(define sock
  (let ((s (socket PF_INET SOCK_STREAM 0)))
    (setsockopt s SOL_SOCKET SO_REUSEADDR 1)
    (bind s AF_INET INADDR_LOOPBACK 0)
    ;; Listening before the port is printed: a client's connect waits in the backlog
    ;; until the server accepts.
    (listen s 128)
    s))

;; The example's (run-server handler) lands here: this module's own binding shadows
;; the one its (use-modules (web server)) imports.
(define (run-server handler . rest)
  (format #t "port ~a~%" (sockaddr:port (getsockname sock)))
  (force-output)
  (%run-server handler impl (list #:socket sock)))

(load (cadr (command-line)))
