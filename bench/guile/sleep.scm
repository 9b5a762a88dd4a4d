;;; bench/guile/sleep.scm IMPL PORT [THREADS]: a handler that sleeps 1 ms, then answers.
(use-modules (web server) (web server gchttp))
(define args (cdr (command-line)))
(define impl (string->symbol (car args)))
(define port (string->number (cadr args)))
(define threads (if (> (length args) 2) (string->number (caddr args)) 1))
(define (sleepy-handler request request-body)
  (usleep 1000)
  (values '((content-type . (text/plain)))
          "slept"))
(run-server sleepy-handler impl
            (if (eq? impl 'gchttp)
                (list #:port port #:threads threads)
                (list #:port port)))
