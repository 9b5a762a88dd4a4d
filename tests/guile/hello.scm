;;; The first program of "Web Examples" in Guile's manual ("Hello, World!"), unchanged.
(use-modules (web server))

(define (hello-world-handler request request-body)
  (values '((content-type . (text/plain)))
          "Hello World!"))

(run-server hello-world-handler)
