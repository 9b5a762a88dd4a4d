;;; bindings/guile/test.scm: the Guile extension against real clients.
;;;
;;; Run by tests/check-guile.sh (make check), which sets the load paths and a time limit:
;;;   GUILE_EXTENSIONS_PATH=bindings/guile/.libs guile --no-auto-compile \
;;;       -L bindings/guile bindings/guile/test.scm
;;; Prints one PASS/FAIL line per check and exits 1 if any failed.  Clients: Guile's own
;;; sockets, and curl when $CURL (or curl on PATH) exists.

(use-modules (gchttp)
             (rnrs bytevectors)
             (rnrs io ports)
             (ice-9 rdelim)
             (ice-9 threads)
             (ice-9 popen)
             (ice-9 receive)
             (ice-9 weak-vector)
             (srfi srfi-1))

(define failures 0)
(define (check name ok . detail)
  (format #t "~a: ~a~a\n" (if ok "PASS" "FAIL") name
          (if (null? detail) "" (format #f " (~a)" (car detail))))
  (force-output)
  (unless ok (set! failures (+ failures 1))))

;;; ---- a minimal HTTP/1.1 client over Guile sockets ---------------------------------

(define (connect-to port)
  (let ((s (socket PF_INET SOCK_STREAM 0)))
    (connect s AF_INET (inet-pton AF_INET "127.0.0.1") port)
    s))

(define (read-crlf-line s)
  (let ((l (read-line s)))
    (if (eof-object? l)
        l
        (string-trim-right l #\return))))

;; Read a response head: (status . headers), header names lower-cased.
(define (read-head s)
  (let ((status-line (read-crlf-line s)))
    (if (eof-object? status-line)
        (cons #f '())
        (let loop ((hs '()))
          (let ((l (read-crlf-line s)))
            (if (or (eof-object? l) (string-null? l))
                (cons (string->number (cadr (string-split status-line #\space)))
                      (reverse hs))
                (let ((i (string-index l #\:)))
                  (loop (cons (cons (string-downcase (substring l 0 i))
                                    (string-trim (substring l (+ i 1))))
                              hs)))))))))

;; One request on a fresh connection (Connection: close): (status headers body-string).
(define* (http-request port method target #:key (headers '()) (body #f))
  (let ((s (connect-to port)))
    (set-port-encoding! s "ISO-8859-1")
    (format s "~a ~a HTTP/1.1\r\nHost: 127.0.0.1:~a\r\nConnection: close\r\n"
            method target port)
    (for-each (lambda (h) (format s "~a: ~a\r\n" (car h) (cdr h))) headers)
    (when body (format s "Content-Length: ~a\r\n" (bytevector-length (string->utf8 body))))
    (display "\r\n" s)
    (when body (put-bytevector s (string->utf8 body)))
    (force-output s)
    (let* ((head (read-head s))
           (bv (get-bytevector-all s)))
      (close-port s)
      (list (car head) (cdr head) (if (eof-object? bv) "" (utf8->string bv))))))

(define (hdr name headers)
  (let ((p (assoc name headers))) (and p (cdr p))))

;;; ---- 1. the shared collector ------------------------------------------------------

(define info (gchttp-gc-info))
(check "gc: one bdwgc, 8.2.x"
       (= (ash (assq-ref info 'gc-version) -8) #x0802)
       (number->string (assq-ref info (quote gc-version)) 16))
(check "gc: Guile's settings kept (interior pointers off, finalize on demand): no second GC_INIT"
       (and (not (assq-ref info 'all-interior-pointers))
            (assq-ref info 'finalize-on-demand))
       info)
(check "gc: gchttp object displacement registered"
       (> (assq-ref info 'obj-displacement) 0)
       (assq-ref info 'obj-displacement))

;;; ---- 2. the server and its handler -------------------------------------------------

(define probes '())            ; C-side probes of /probe requests
(define probe-mutex (make-mutex))
(define weak-reqs (make-weak-vector 64 #f)) ; Scheme wrappers of /probe requests
(define weak-objs (make-weak-vector 64 #f)) ; a Scheme object made per /probe request
(define n-probe 0)
(define premature #f)          ; a request found collected while its handler ran
(define hijack-ok #f)

(define (echo-over-conn conn)
  ;; The connection is ours: echo lines until "bye", with collections in between.
  (let ((p (gchttp-conn->port conn)))
    (let loop ()
      (let ((bv (get-bytevector-some p)))
        (gc)
        (unless (eof-object? bv)
          (put-bytevector p bv)
          (force-output p)
          (unless (string-contains (utf8->string bv) "bye")
            (loop)))))
    (set! hijack-ok #t)
    (close-port p)))

(define (make-handler counter)
  ;; A fresh closure over `counter`: the server's handler_data is its only owner.
  (lambda (req)
    ;; Workers run handlers concurrently: count under a lock.
    (with-mutex probe-mutex (set-car! counter (+ (car counter) 1)))
    (let ((target (gchttp-request-target req)))
      (cond
       ((string=? target "/echo")
        (values 200
                `(("Content-Type" . "text/plain; charset=utf-8")
                  ("X-Method" . ,(gchttp-request-method req))
                  ("X-Proto" . ,(gchttp-request-proto req))
                  ("X-Host" . ,(gchttp-request-host req))
                  ("X-Test" . ,(or (gchttp-request-header req "x-test") "none"))
                  ("X-Count" . ,(number->string (length (gchttp-request-headers req))))
                  ("X-Multi" . "a") ("X-Multi" . "b"))
                (string-append (gchttp-request-method req) " " target " "
                               (gchttp-request-body-string req))))
       ((string=? target "/list")
        (list 201 '(("Content-Type" . "application/octet-stream"))
              (u8-list->bytevector '(104 195 169 108 108 111)))) ; "héllo" in UTF-8
       ((string=? target "/error")
        (error "boom"))
       ((string=? target "/bad-result")
        42)
       ((string=? target "/probe")
        (let ((p (gchttp-request-probe req))
              (obj (make-vector 8 target)))
          (gc)
          (when (gchttp-probe-collected? p) (set! premature #t))
          (with-mutex probe-mutex
            (set! probes (cons p probes))
            (weak-vector-set! weak-reqs n-probe req)
            (weak-vector-set! weak-objs n-probe obj)
            (set! n-probe (+ n-probe 1)))
          (values 200 '() "probed")))
       ((string=? target "/hijack")
        (let ((conn (gchttp-hijack req 101 '(("Upgrade" . "echo")
                                               ("Connection" . "Upgrade")))))
          (gc)
          (echo-over-conn conn)
          'ignored))
       (else
        (values 404 '(("Content-Type" . "text/plain")) "not found\n"))))))

(define handler-ref (make-weak-vector 1 #f))
(define counter (list 0))
(define srv
  (let ((h (make-handler counter)))
    (weak-vector-set! handler-ref 0 h)
    (gchttp-serve "127.0.0.1" 0 h)))
(define port (gchttp-server-port srv))
(check "serve: listening on an ephemeral port" (and (integer? port) (> port 0)) port)

;; The handler is referenced only by the server: collect, then use it.
(gc) (gc) (gchttp-gc-collect 2)
(check "handler kept alive by the server while it runs"
       (procedure? (weak-vector-ref handler-ref 0)))

(let ((r (http-request port "GET" "/echo" #:headers '(("X-Test" . "abc")))))
  (check "GET status 200" (eqv? (car r) 200) (car r))
  (check "request fields as Scheme values (method, proto, host, header)"
         (and (equal? (hdr "x-method" (cadr r)) "GET")
              (equal? (hdr "x-proto" (cadr r)) "HTTP/1.1")
              (equal? (hdr "x-host" (cadr r)) (format #f "127.0.0.1:~a" port))
              (equal? (hdr "x-test" (cadr r)) "abc")
              (equal? (hdr "x-count" (cadr r)) "3"))
         (cadr r))
  (check "repeated response header fields"
         (equal? (filter-map (lambda (h) (and (string=? (car h) "x-multi") (cdr h))) (cadr r))
                 '("a" "b")))
  (check "response body" (equal? (caddr r) "GET /echo ") (caddr r)))

(let ((r (http-request port "POST" "/echo" #:body "héllo, body")))
  (check "POST body read with gh_request_read_all" (equal? (caddr r) "POST /echo héllo, body")
         (caddr r)))

(let ((r (http-request port "GET" "/list")))
  (check "list result (status headers bytevector)"
         (and (eqv? (car r) 201) (equal? (caddr r) "héllo")
              (equal? (hdr "content-length" (cadr r)) "6"))
         r))

(let ((r (http-request port "GET" "/nope")))
  (check "404 from the handler" (eqv? (car r) 404) (car r)))

(let ((r (http-request port "GET" "/error")))
  (check "handler exception -> 500" (eqv? (car r) 500) (car r)))
(let ((r (http-request port "GET" "/bad-result")))
  (check "bad handler result -> 500" (eqv? (car r) 500) (car r)))

;; curl, a real client from Debian.
(define curl
  (let ((c (getenv "CURL")))
    (if (and c (not (string-null? c)))
        c
        (and (zero? (status:exit-val (system "command -v curl >/dev/null 2>&1"))) "curl"))))
(if curl
    (let* ((pipe (open-pipe* OPEN_READ curl "-sS" "--max-time" "10"
                             "-H" "X-Test: from-curl" "--data-binary" "curl body"
                             "-D" "-" (format #f "http://127.0.0.1:~a/echo" port)))
           (out (get-string-all pipe))
           (rc (status:exit-val (close-pipe pipe))))
      (check "curl POST: status, header, body"
             (and (zero? rc)
                  (string-prefix? "HTTP/1.1 200" out)
                  (string-contains out "X-Test: from-curl")
                  (string-contains out "POST /echo curl body"))
             out))
    (format #t "SKIP: curl not found\n"))

;; Concurrent clients: several workers enter Guile at once, with collections.
(let* ((nthreads 4) (per 25)
       (results
        (par-map (lambda (i)
                   (let loop ((k 0) (ok 0))
                     (if (= k per)
                         ok
                         (let ((r (http-request port "POST" "/echo"
                                                #:body (format #f "t~a-~a" i k))))
                           (when (zero? (modulo k 10)) (gc))
                           (loop (+ k 1)
                                 (if (equal? (caddr r) (format #f "POST /echo t~a-~a" i k))
                                     (+ ok 1)
                                     ok))))))
                 (iota nthreads))))
  (check "concurrent requests (4 client threads x 25)"
         (= (apply + results) (* nthreads per))
         results)
  (check "pool threads served the concurrent clients" (>= (assq-ref (gchttp-server-stats srv) 'threads) 1)
         (gchttp-server-stats srv)))

;;; ---- 3. hijack ---------------------------------------------------------------------

(let ((s (connect-to port)))
  (set-port-encoding! s "ISO-8859-1")
  ;; The first bytes travel in the same segment as the request head: none may be lost.
  (format s "GET /hijack HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\nfirst\n")
  (force-output s)
  (let* ((head (read-head s))
         (l1 (read-crlf-line s)))
    (check "hijack: 101 sent before the hijack" (eqv? (car head) 101) head)
    (check "hijack: bytes sent with the head are echoed" (equal? l1 "first") l1)
    (display "second line\n" s)
    (force-output s)
    (let ((l2 (read-crlf-line s)))
      (check "hijack: echo over the connection port" (equal? l2 "second line") l2))
    (display "bye\n" s)
    (force-output s)
    (let ((l3 (read-crlf-line s))
          (end (read-char s)))
      (check "hijack: closed by the handler after bye"
             (and (equal? l3 "bye") (eof-object? end))
             (list l3 end))))
  (close-port s))
(check "hijack: handler finished the echo loop" hijack-ok)
(check "hijack: counted by the server" (= (assq-ref (gchttp-server-stats srv) 'hijacked) 1)
       (gchttp-server-stats srv))

;;; ---- 4. what a request leaves behind ----------------------------------------------

(define n-requests 20)
(do ((i 0 (+ i 1))) ((= i n-requests))
  (http-request port "GET" "/probe"))
(check "probe: requests served" (= n-probe n-requests) n-probe)
(check "probe: nothing collected while its handler ran" (not premature))

(define (count-cleared wv n)
  (let loop ((i 0) (c 0))
    (if (= i n) c (loop (+ i 1) (if (weak-vector-ref wv i) c (+ c 1))))))
(define (count-collected)
  (count gchttp-probe-collected? probes))

;; Bounded: at most 10 rounds of collections.  Allow one straggler per kind: a stale
;; word in the collector's own frames can pin one object (docs: notes on bdwgc §3.2).
(let loop ((round 1))
  (gc)
  (gchttp-gc-collect 2)
  (let ((c (count-collected))
        (r (count-cleared weak-reqs n-requests))
        (o (count-cleared weak-objs n-requests)))
    (if (and (< round 10) (or (< c n-requests) (< r n-requests) (< o n-requests)))
        (loop (+ round 1))
        (begin
          (check "collected: gchttp request+response of each finished request (C probes)"
                 (>= c (- n-requests 1))
                 (format #f "~a/~a after ~a rounds" c n-requests round))
          (check "collected: Scheme request wrapper of each finished request (weak vector)"
                 (>= r (- n-requests 1))
                 (format #f "~a/~a after ~a rounds" r n-requests round))
          (check "collected: Scheme object made by each request's handler (weak vector)"
                 (>= o (- n-requests 1))
                 (format #f "~a/~a after ~a rounds" o n-requests round))))))

;;; ---- 5. close -----------------------------------------------------------------------

(define served (car counter))
(define stats (gchttp-server-stats srv))
(gchttp-close srv)
(check "close: the Scheme handler ran once per request the server handed over"
       (= served (assq-ref stats 'requests) (+ 7 100 1 n-requests))
       (list served stats))
(let ((refused (catch 'system-error
                 (lambda () (close-port (connect-to port)) #f)
                 (lambda _ #t))))
  (check "close: listener gone" refused))

;; Once the server is closed and dropped, the handler is no longer retained.
(set! srv #f)
(let loop ((round 1))
  (gc)
  (gchttp-gc-collect 2)
  (if (and (< round 10) (weak-vector-ref handler-ref 0))
      (loop (+ round 1))
      (check "close: handler released with the server"
             (not (weak-vector-ref handler-ref 0))
             (format #f "after ~a rounds" round))))

(format #t "~a\n" (if (zero? failures) "ALL PASSED" (format #f "~a FAILED" failures)))
(exit (if (zero? failures) 0 1))
