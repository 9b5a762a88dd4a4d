;;; bench/guile/hello.scm IMPL PORT [THREADS]: the manual's hello handler under run-server
;;; with back end IMPL ('http or 'gchttp) on 127.0.0.1:PORT; #:threads for 'gchttp.
(use-modules (web server) (web server gchttp))
(define args (cdr (command-line)))
(define impl (string->symbol (car args)))
(define port (string->number (cadr args)))
(define threads (if (> (length args) 2) (string->number (caddr args)) 1))
(define (hello-world-handler request request-body)
  (values '((content-type . (text/plain)))
          "Hello World!"))
(run-server hello-world-handler impl
            (if (eq? impl 'gchttp)
                (list #:port port #:threads threads)
                (list #:port port)))
