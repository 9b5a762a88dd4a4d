;;; bindings/guile/test-web.scm: run-server's 'gchttp back end, (web server gchttp).
;;;
;;; Run by tests/check-guile-web.sh (make check) with the load paths and a time limit.
;;; Each case runs run-server in a thread of its own on a socket bound to 127.0.0.1:0;
;;; clients are Guile sockets and curl.  Prints one PASS/FAIL line per check, exits 1 if
;;; any failed.

(use-modules (web server)
             (web server gchttp)
             (web request)
             (web response)
             (web uri)
             (gchttp)
             (rnrs bytevectors)
             (ice-9 binary-ports)
             (ice-9 textual-ports)
             (ice-9 rdelim)
             (ice-9 threads)
             (ice-9 popen)
             (ice-9 weak-vector)
             (ice-9 exceptions)
             (srfi srfi-1))

(define failures 0)
(define (check name ok . detail)
  (format #t "~a: ~a~a\n" (if ok "PASS" "FAIL") name
          (if (or ok (null? detail)) "" (format #f " (~s)" (car detail))))
  (force-output)
  (unless ok (set! failures (+ failures 1))))

(define curl (or (getenv "CURL") "curl"))

;;; ---- servers and clients --------------------------------------------------------------

;; Start (run-server handler 'gchttp (#:socket s . params)) in a new thread; the port.
(define (start-server handler . params)
  (let ((s (socket PF_INET SOCK_STREAM 0)))
    (setsockopt s SOL_SOCKET SO_REUSEADDR 1)
    (bind s AF_INET INADDR_LOOPBACK 0)
    (listen s 128)
    (call-with-new-thread
     (lambda ()
       (run-server handler 'gchttp (append (list #:socket s) params))))
    (sockaddr:port (getsockname s))))

(define (connect-to port)
  (let ((s (socket PF_INET SOCK_STREAM 0)))
    (connect s AF_INET INADDR_LOOPBACK port)
    (set-port-encoding! s "ISO-8859-1")
    s))

(define (read-crlf-line s)
  (let ((l (read-line s)))
    (if (eof-object? l) l (string-trim-right l #\return))))

;; Read one response from s: (status headers body-bytevector); headers lower-cased,
;; chunked bodies decoded.
(define (read-response* s)
  (let* ((status-line (read-crlf-line s))
         (status (and (string? status-line)
                      (string->number (cadr (string-split status-line #\space)))))
         (headers (let lp ((hs '()))
                    (let ((l (read-crlf-line s)))
                      (if (or (eof-object? l) (string-null? l))
                          (reverse hs)
                          (let ((i (string-index l #\:)))
                            (lp (cons (cons (string-downcase (substring l 0 i))
                                            (string-trim (substring l (+ i 1))))
                                      hs)))))))
         (te (assoc-ref headers "transfer-encoding"))
         (len (assoc-ref headers "content-length"))
         (body (cond
                ((and te (string-contains te "chunked"))
                 (let lp ((parts '()))
                   (let* ((l (read-crlf-line s))
                          (n (string->number (car (string-split l #\;)) 16)))
                     (if (zero? n)
                         (begin (read-crlf-line s)
                                (u8-list->bytevector
                                 (append-map bytevector->u8-list (reverse parts))))
                         (let ((chunk (get-bytevector-n s n)))
                           (read-crlf-line s)
                           (lp (cons chunk parts)))))))
                (len (let ((bv (get-bytevector-n s (string->number len))))
                       (if (eof-object? bv) #vu8() bv)))
                (else (let ((bv (get-bytevector-all s)))
                        (if (eof-object? bv) #vu8() bv))))))
    (list status headers body)))

(define* (request port method target #:key (headers '()) (body #f) (close? #t))
  (let ((s (connect-to port)))
    (format s "~a ~a HTTP/1.1\r\nHost: t\r\n~a" method target
            (if close? "Connection: close\r\n" ""))
    (for-each (lambda (h) (format s "~a: ~a\r\n" (car h) (cdr h))) headers)
    (when body (format s "Content-Length: ~a\r\n" (bytevector-length body)))
    (display "\r\n" s)
    (when body (put-bytevector s body))
    (force-output s)
    (let ((r (read-response* s)))
      (close-port s)
      r)))

(define (status-of r) (car r))
(define (body-string r) (utf8->string (caddr r)))

;; Run a shell command, its standard output as a string.
(define (shell cmd)
  (let* ((p (open-input-pipe cmd))
         (out (get-string-all p)))
    (close-pipe p)
    out))

;;; ---- 1. errors are conditions with readable messages ---------------------------------

;; The condition THUNK raises (a key and its arguments for an old-style throw), or #f.
(define (raised thunk)
  (catch #t
    (lambda () (thunk) #f)
    (lambda (k . args) (if (eq? k '%exception) (car args) (cons k args)))))

(let ((e (raised (lambda () (open-server (lookup-server-impl 'gchttp) '(#:request-body banana))))))
  (check "options: a bad #:request-body raises a &gchttp-error with a readable message"
         (and (gchttp-error? e) (string-contains (exception-message e) "#:request-body"))
         e))

(let* ((s (socket PF_INET SOCK_STREAM 0))
       (_ (begin (bind s AF_INET INADDR_LOOPBACK 0) (listen s 1)))
       (port (sockaddr:port (getsockname s)))
       (e (raised (lambda () (open-server (lookup-server-impl 'gchttp) (list #:port port))))))
  (check "open on a port in use: &gchttp-error GH_EADDRINUSE, origin and message"
         (and (exception? e) (gchttp-error? e)
              (eq? (gchttp-error-code e) 'GH_EADDRINUSE)
              (eq? (exception-origin e) 'gchttp-open)
              (string-contains (exception-message e) "in use"))
         e)
  (close-port s))

(let ((e (raised (lambda () (open-server (lookup-server-impl 'gchttp) '(#:threads 4))))))
  (check "#:threads through Guile's own run-server: an error that says what to do"
         (and (gchttp-error? e) (string-contains (exception-message e) "(web server gchttp)"))
         e))

;;; ---- 2. docstrings -------------------------------------------------------------------

(define (undocumented module-name)
  (let ((m (resolve-interface module-name)))
    (filter (lambda (sym)
              (let ((v (module-ref m sym)))
                (and (procedure? v) (not (procedure-documentation v)))))
            (module-map (lambda (sym var) sym) m))))

(check "docstrings: every exported procedure of (web server gchttp) has one"
       (null? (undocumented '(web server gchttp))) (undocumented '(web server gchttp)))
(check "docstrings: every exported procedure of (gchttp) has one"
       (null? (undocumented '(gchttp))) (undocumented '(gchttp)))

;;; ---- 3. a handler's exception: 500, logged once, the server goes on ------------------

(define log-port (open-output-string))
(define log-mutex (make-mutex))
(define boom-port
  (let ((s (socket PF_INET SOCK_STREAM 0)))
    (setsockopt s SOL_SOCKET SO_REUSEADDR 1)
    (bind s AF_INET INADDR_LOOPBACK 0)
    (listen s 16)
    (call-with-new-thread
     (lambda ()
       (parameterize ((current-error-port log-port))
         (run-server (lambda (request body)
                       (if (string=? (uri-path (request-uri request)) "/boom")
                           (error "boom-marker from the handler")
                           (values '((content-type . (text/plain))) "fine")))
                     'gchttp (list #:socket s)))))
    (sockaddr:port (getsockname s))))

(let* ((r1 (request boom-port "GET" "/boom"))
       (r2 (request boom-port "GET" "/ok"))
       (log (get-output-string log-port))
       (count (let lp ((i 0) (n 0))
                (let ((j (string-contains log "boom-marker" i)))
                  (if j (lp (+ j 1) (+ n 1)) n)))))
  (check "handler exception: answered 500" (eqv? (status-of r1) 500) r1)
  (check "handler exception: the next request is served" (and (eqv? (status-of r2) 200)
                                                              (string=? (body-string r2) "fine"))
         r2)
  (check "handler exception: logged once" (= count 1) log))

;;; ---- 4. request and response bodies ----------------------------------------------------

(define echo-port
  (start-server (lambda (request body)
                  (values '((content-type . (application/octet-stream)))
                          (or body #vu8())))
                #:body-limit 1000 #:loops 2 #:workers 8 #:read-header-timeout 5
                #:idle-timeout 30 #:max-header-bytes 65536))

(let ((r (request echo-port "POST" "/" #:body (string->utf8 "hello body"))))
  (check "bytevector body: echoed" (and (eqv? (status-of r) 200)
                                        (string=? (body-string r) "hello body")) r))
(let ((r (request echo-port "POST" "/" #:body (make-bytevector 1001 65))))
  (check "bytevector body over #:body-limit (Content-Length): 413" (eqv? (status-of r) 413) r))

;; A streaming upload: the handler reads the port 64 KiB at a time and answers the byte
;; count and the sum of the bytes.
(define (consume port)
  (let ((buf (make-bytevector 65536)))
    (let lp ((n 0) (sum 0))
      (let ((k (get-bytevector-n! port buf 0 65536)))
        (if (eof-object? k)
            (values n sum)
            (lp (+ n k)
                (let s ((i 0) (acc sum))
                  (if (= i k) acc (s (+ i 1) (+ acc (bytevector-u8-ref buf i)))))))))))

(define stream-port
  (start-server (lambda (request body)
                  (call-with-values (lambda () (consume body))
                    (lambda (n sum)
                      (values '((content-type . (text/plain)))
                              (format #f "~a ~a ~a" n sum
                                      (assq-ref (gc-stats) 'heap-size))))))
                #:request-body 'port))

(define limited-port
  (start-server (lambda (request body)
                  (call-with-values (lambda () (consume body))
                    (lambda (n sum) (values '() (number->string n)))))
                #:request-body 'port #:body-limit 100000))

;; GH_GUILE_QUICK=1 leaves the 100 MiB upload out (for running the file 50 times).
(unless (getenv "GH_GUILE_QUICK")
(let* ((heap-before (assq-ref (gc-stats) 'heap-size))
       (mib 100)
       (out (shell (format #f "head -c ~a /dev/zero | tr '\\000' '\\001' | ~a -s -T - -H 'Expect:' http://127.0.0.1:~a/up"
                           (* mib 1024 1024) curl stream-port)))
       (fields (map string->number (string-split out #\space))))
  (check "streaming upload: 100 MiB chunked through the body port, every byte seen"
         (and (= (length fields) 3)
              (= (car fields) (* mib 1024 1024))
              (= (cadr fields) (* mib 1024 1024)))
         out)
  (check "streaming upload: the heap grew by less than 16 MiB (bounded memory)"
         (and (= (length fields) 3) (< (- (caddr fields) heap-before) (* 16 1024 1024)))
         (list heap-before out))))

(let ((out (shell (format #f "head -c 300000 /dev/zero | ~a -s -o /dev/null -w '%{http_code}' -T - -H 'Expect:' http://127.0.0.1:~a/up"
                          curl limited-port))))
  (check "port body over #:body-limit (chunked): 413" (string=? out "413") out))

(define chunks-port
  (start-server (lambda (request body)
                  (values '((content-type . (text/plain)))
                          (streaming-body
                           (lambda (port)
                             (display "one," port) (force-output port)
                             (display "two," port) (force-output port)
                             (display "three" port)))))))

(let* ((s (connect-to chunks-port)))
  (display "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" s)
  (force-output s)
  (let* ((raw (get-bytevector-all s))
         (text (utf8->string raw)))
    (close-port s)
    (check "streaming-body: sent chunked, one chunk per force-output"
           (and (string-contains text "Transfer-Encoding: chunked")
                (string-contains text "\r\n4\r\none,\r\n4\r\ntwo,\r\n5\r\nthree\r\n0\r\n\r\n")
                (not (string-contains text "Content-Length")))
           text)))

;;; ---- 4b. keep-alive, pipelining, a Unix socket --------------------------------------

(let ((s (connect-to echo-port)))
  ;; Two requests in one write, on one connection.
  (display (string-append "POST /1 HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\none"
                          "POST /2 HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\ntwo") s)
  (force-output s)
  (let* ((r1 (read-response* s)) (r2 (read-response* s)))
    (close-port s)
    (check "pipelining: two requests in one segment are answered in order on one connection"
           (and (equal? (caddr r1) (string->utf8 "one")) (equal? (caddr r2) (string->utf8 "two")))
           (list r1 r2))))

(let ((r (request echo-port "GET" "/" #:headers `(("X-Big" . ,(make-string 70000 #\a))))))
  (check "#:max-header-bytes 65536: a 70 KB head is answered 431" (eqv? (status-of r) 431) r))

(define unix-path (format #f "/tmp/gchttp-guile-test-~a.sock" (getpid)))
(false-if-exception (delete-file unix-path))
;; Opened here, so the socket listens before any client; served by Guile's own
;; serve-one-client loop (the path of Guile's run-server) in a thread.
(let* ((impl (lookup-server-impl 'gchttp))
       (srv (open-server impl (list #:addr (string-append "unix:" unix-path)))))
  (call-with-new-thread
   (lambda ()
     (let lp ()
       (serve-one-client (lambda (request body)
                           (values '((content-type . (text/plain))) "over unix"))
                         impl srv '())
       (lp))))
  (let ((out (shell (format #f "~a -s --unix-socket ~a http://localhost/" curl unix-path))))
    (check "#:addr \"unix:/path\": served over a Unix socket (Guile's serve-one-client loop)"
           (string=? out "over unix") out)))

;;; ---- 5. hijack: the connection as two ports --------------------------------------------

(define hijack-port
  (start-server
   (lambda (request body)
     (call-with-values
         (lambda ()
           (hijack-connection request
                              (build-response #:code 101
                                              #:headers '((upgrade . ("echo"))
                                                          (connection . (upgrade))))))
       (lambda (in out)
         (call-with-new-thread
          (lambda ()
            ;; Echo lines back, upper-cased, until "bye".
            (let lp ()
              (let ((l (read-line in)))
                (unless (or (eof-object? l) (string=? l "bye"))
                  (put-string out (string-append (string-upcase l) "\n"))
                  (lp))))
            (put-string out "server-bye\n")
            (close-port out)
            (close-port in)))))
     (values '() #f))))

(let ((s (connect-to hijack-port)))
  (display "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: echo\r\nConnection: upgrade\r\n\r\nping\n" s)
  (force-output s)
  (let* ((status (read-crlf-line s))
         (_ (let lp () (let ((l (read-crlf-line s))) (unless (or (eof-object? l) (string-null? l)) (lp)))))
         (first (read-line s)))
    (display "pong\nbye\n" s)
    (force-output s)
    (let* ((second (read-line s)) (third (read-line s)) (end (read-line s)))
      (close-port s)
      (check "hijack: 101 sent before the ports take over" (string-contains status "101") status)
      (check "hijack: bytes sent with the head are read first, the ports echo both ways"
             (and (equal? first "PING") (equal? second "PONG") (equal? third "server-bye")
                  (eof-object? end))
             (list first second third end)))))

;;; ---- 6. close-notify --------------------------------------------------------------------

(define notify-result (make-parameter #f))
(define notify-results '())
(define notify-mutex (make-mutex))
(define notify-cv (make-condition-variable))
(define notify-port
  (start-server (lambda (request body)
                  (let ((r (close-notify-wait request
                                              (if (string=? (uri-path (request-uri request)) "/short")
                                                  0.05 10))))
                    (with-mutex notify-mutex
                      (set! notify-results (cons r notify-results))
                      (signal-condition-variable notify-cv))
                    (values '() "x")))))

(define (wait-notify-results n)
  (with-mutex notify-mutex
    (let lp ()
      (when (< (length notify-results) n)
        (wait-condition-variable notify-cv notify-mutex (+ (current-time) 20))
        (lp)))
    notify-results))

(let ((r (request notify-port "GET" "/short")))
  (check "close-notify-wait: #f after its timeout while the client stays"
         (equal? (wait-notify-results 1) '(#f)) notify-results))
(let ((s (connect-to notify-port)))
  (display "GET /long HTTP/1.1\r\nHost: t\r\n\r\n" s)
  (force-output s)
  (close-port s)
  (check "close-notify-wait: #t when the client goes away (well before its 10 s timeout)"
         (equal? (wait-notify-results 2) '(#t #f)) notify-results))

;;; ---- 7. collection: a finished request leaves nothing reachable ------------------------

(define n-runs 50)
(define req-weak (make-weak-vector n-runs #f))
(define probes (make-vector n-runs #f))
(define probe-index 0)
(define gc-port
  (start-server (lambda (request body)
                  (weak-vector-set! req-weak probe-index request)
                  (vector-set! probes probe-index (request-probe request))
                  (set! probe-index (+ probe-index 1))
                  (values '((content-type . (text/plain))) "ok"))))

(do ((i 0 (+ i 1))) ((= i n-runs))
  (request gc-port "GET" (format #f "/~a" i)))
(gc) (gchttp-gc-collect 2) (gc)
(let ((records (count (lambda (i) (weak-vector-ref req-weak i)) (iota n-runs)))
      (c-objects (count (lambda (i) (not (gchttp-probe-collected? (vector-ref probes i))))
                        (iota n-runs))))
  ;; A conservative collector may see one stale copy on a stack: one straggler allowed.
  (check (format #f "collection: the Scheme request records of ~a finished requests are collected"
                 n-runs)
         (<= records 1) records)
  (check (format #f "collection: gchttp's C request and response of ~a finished requests are collected"
                 n-runs)
         (<= c-objects 1) c-objects))

;;; ---- 8. #:threads: handlers run at once ------------------------------------------------

(define barrier-mutex (make-mutex))
(define barrier-cv (make-condition-variable))
(define inside 0)
(define threads-port
  (let ((s (socket PF_INET SOCK_STREAM 0)))
    (setsockopt s SOL_SOCKET SO_REUSEADDR 1)
    (bind s AF_INET INADDR_LOOPBACK 0)
    (listen s 16)
    (call-with-new-thread
     (lambda ()
       (run-server (lambda (request body)
                     ;; Answer only once 4 handlers are inside at the same time (or
                     ;; after 10 s: then the test sees "alone").
                     (let ((met (with-mutex barrier-mutex
                                  (set! inside (+ inside 1))
                                  (broadcast-condition-variable barrier-cv)
                                  (let lp ()
                                    (cond ((>= inside 4) #t)
                                          ((wait-condition-variable barrier-cv barrier-mutex
                                                                    (+ (current-time) 10))
                                           (lp))
                                          (else #f))))))
                       (values '() (if met "together" "alone"))))
                   'gchttp (list #:socket s #:threads 4))))
    (sockaddr:port (getsockname s))))

(let* ((clients (map (lambda (i)
                       (call-with-new-thread
                        (lambda () (body-string (request threads-port "GET" "/")))))
                     (iota 4)))
       (results (map join-thread clients)))
  (check "#:threads 4: four handlers run at the same time"
         (equal? results '("together" "together" "together" "together")) results))

(format #t "~a failure(s)\n" failures)
(exit (if (zero? failures) 0 1))
