;;; (web server gchttp): gchttp as a back end of Guile's (web server).
;;;
;;;   (use-modules (web server))
;;;   (run-server (lambda (request body) (values '((content-type . (text/plain))) "hi"))
;;;               'gchttp '(#:port 8080))
;;;
;;; run-server finds this module by the symbol 'gchttp.  The server is gchttp's C server
;;; (keep-alive, pipelining, timeouts, limits, a pool of threads reading and writing);
;;; requests reach Scheme as (web request) records built from gchttp's parsed head with
;;; Guile's own header parsers, and responses go out from (web response) records.
;;; The handler runs on the Scheme thread that called run-server, one request at a time,
;;; as with Guile's 'http; #:threads N (with this module's run-server) runs N such loops.
;;; See README.md next to the (gchttp) module for the whole story.

(define-module (web server gchttp)
  #:use-module (gchttp)
  #:use-module ((web server) #:select (define-server-impl lookup-server-impl
                                       open-server close-server serve-one-client
                                       sanitize-response server-impl? server-impl-name)
                #:prefix guile:)
  #:use-module ((web server) #:select (define-server-impl))
  #:use-module (web request)
  #:use-module (web response)
  #:use-module (web http)
  #:use-module (rnrs bytevectors)
  #:use-module (ice-9 binary-ports)
  #:use-module (ice-9 threads)
  #:use-module (ice-9 exceptions)
  #:use-module (srfi srfi-9)
  #:export (gchttp
            gchttp-server-port
            request-body-port
            streaming-body
            hijack-connection
            close-notify-wait
            close-notify-port
            request-probe)
  #:replace (run-server))

;; The primitives of the extension, private to (gchttp).
(define (primitive name) (module-ref (resolve-module '(gchttp)) name))
(define %gchttp-open (primitive '%gchttp-open))
(define %gchttp-port (primitive '%gchttp-port))
(define %gchttp-next (primitive '%gchttp-next))
(define %gchttp-finish (primitive '%gchttp-finish))
(define %gchttp-head (primitive '%gchttp-head))
(define %gchttp-body-read! (primitive '%gchttp-body-read!))
(define %gchttp-respond-head! (primitive '%gchttp-respond-head!))
(define %gchttp-body-write! (primitive '%gchttp-body-write!))
(define %gchttp-flush (primitive '%gchttp-flush))
(define %gchttp-hijack (primitive '%gchttp-hijack))
(define %gchttp-hijacked? (primitive '%gchttp-hijacked?))
(define %gchttp-close-notify-wait (primitive '%gchttp-close-notify-wait))
(define %gchttp-close-notify-fd (primitive '%gchttp-close-notify-fd))
(define %gchttp-probe (primitive '%gchttp-probe))
(define %gchttp-close (primitive '%gchttp-close))
(define %raise-gchttp-error (primitive '%raise-gchttp-error))

;;; ---- the server and its clients ------------------------------------------------------

(define-record-type <gchttp-server>
  (make-gchttp-server backend body-mode body-limit threads closed?)
  gchttp-server?
  (backend server-backend)
  (body-mode server-body-mode)          ; 'bytevector or 'port
  (body-limit server-body-limit)        ; bytes, or #f
  (threads server-threads)
  (closed? server-closed? set-server-closed!))

;; One request being served: the C side (%gchttp-next), its body port, and the
;; streaming body procedure recorded by streaming-body while run-server sanitizes.
(define-record-type <client>
  (make-client c server body-port stream limit-hit?)
  client?
  (c client-c)
  (server client-server)
  (body-port client-body-port set-client-body-port!)
  (stream client-stream set-client-stream!)
  (limit-hit? client-limit-hit? set-client-limit-hit!))

;; The client whose request this thread is handling (read sets it, write clears it):
;; streaming-body uses it to tell run-server's sanitize step from a direct call.
(define %current-client (make-thread-local-fluid #f))

;; run-server with #:threads sets it around open-server.
(define %threads-run (make-parameter #f))

(define (gchttp-server-port server)
  "The TCP port SERVER listens on (0 for a Unix socket).  SERVER is the object that
the 'gchttp back end's open returned (e.g. from open-server)."
  (%gchttp-port (server-backend server)))

(define (seconds-or-false who name v)
  (cond ((not v) #f)
        ((eq? v 'none) 'none)
        ((and (real? v) (>= v 0)) v)
        (else (%raise-gchttp-error who #f
                                   (format #f "~a: want seconds, #f (default) or 'none, not ~s"
                                           name v)))))

(define* (gchttp-open #:key
                      (host #f)
                      (family AF_INET)
                      (addr #f)
                      (port 8080)
                      (socket #f)
                      (read-header-timeout #f)
                      (read-timeout #f)
                      (write-timeout #f)
                      (idle-timeout #f)
                      (handoff-timeout #f)
                      (max-header-bytes #f)
                      (max-body-drain #f)
                      (workers #f)
                      (loops #f)
                      (keep-alive? #t)
                      (request-body 'bytevector)
                      (body-limit 'default)
                      (threads 1))
  "Open a gchttp server for run-server.  Where it listens, as Guile's 'http takes it:
#:host (a numeric address or a name) and #:port (8080), or #:family and #:addr (an
integer address as from inet-pton), or #:socket (a bound socket port; it is put in
listening mode), and also #:addr as a string in gchttp's form: \"host:port\",
\"[v6]:port\", \":port\" or \"unix:/path\".  With none of them: 127.0.0.1:8080.

Limits and timeouts (#f keeps gchttp's default, 'none disables; seconds):
#:read-header-timeout (10), #:read-timeout (300), #:write-timeout (300),
#:idle-timeout (120), #:handoff-timeout ('none here: every request is handed to a
pool thread, since it waits for Scheme anyway); #:max-header-bytes (1 MiB, 431
beyond), #:max-body-drain (256 KiB), #:workers (gchttp's pool, 64), #:loops (gchttp's
event loops, one per CPU), #:keep-alive? (#t).

The request body reaches the handler as #:request-body says: 'bytevector (the default,
as 'http: the whole body, or #f when the request has none) or 'port (a binary input
port that streams it).  #:body-limit caps it in bytes, answering 413 beyond: the
default is 64 MiB for 'bytevector and none for 'port; #f means no limit.

#:threads N (default 1) runs N handler loops at once; it needs this module's
run-server (see its documentation)."
  (define who 'gchttp-open)
  (unless (memq request-body '(bytevector port))
    (%raise-gchttp-error who #f (format #f "#:request-body: want 'bytevector or 'port, not ~s"
                                        request-body)))
  (unless (and (exact-integer? threads) (positive? threads))
    (%raise-gchttp-error who #f (format #f "#:threads: want a positive integer, not ~s" threads)))
  (when (and (> threads 1) (not (%threads-run)))
    (%raise-gchttp-error
     who #f "#:threads needs the run-server of (web server gchttp): add (use-modules (web server gchttp))"))
  (let* ((limit (cond ((eq? body-limit 'default)
                       (and (eq? request-body 'bytevector) (* 64 1024 1024)))
                      ((not body-limit) #f)
                      ((and (exact-integer? body-limit) (>= body-limit 0)) body-limit)
                      (else (%raise-gchttp-error
                             who #f (format #f "#:body-limit: want bytes or #f, not ~s"
                                            body-limit)))))
         (where (cond (socket
                       (listen socket 128)
                       `((fd . ,(fileno socket))))
                      ((string? addr) `((addr . ,addr)))
                      ((integer? addr)
                       `((host . ,(inet-ntop family addr)) (port . ,port)))
                      (addr (%raise-gchttp-error
                             who #f (format #f "#:addr: want an address string or integer, not ~s"
                                            addr)))
                      (host `((host . ,host) (port . ,port)))
                      (else `((host . "127.0.0.1") (port . ,port)))))
         (opts `(,@where
                 (read-header-timeout . ,(seconds-or-false who "#:read-header-timeout"
                                                           read-header-timeout))
                 (read-timeout . ,(seconds-or-false who "#:read-timeout" read-timeout))
                 (write-timeout . ,(seconds-or-false who "#:write-timeout" write-timeout))
                 (idle-timeout . ,(seconds-or-false who "#:idle-timeout" idle-timeout))
                 ;; A request always waits for a Scheme thread: serving it on the
                 ;; poller's thread would only stall the poller until the hand-off.
                 (handoff-timeout . ,(or (seconds-or-false who "#:handoff-timeout"
                                                           handoff-timeout)
                                         'none))
                 (max-header-bytes . ,max-header-bytes)
                 (max-body-drain . ,max-body-drain)
                 (workers . ,workers)
                 (loops . ,loops)
                 (keep-alive? . ,(and keep-alive? #t)))))
    ;; Writes to a closed connection are errors, not signals (as 'http does).
    (sigaction SIGPIPE SIG_IGN)
    (make-gchttp-server (%gchttp-open opts) request-body limit threads #f)))

;;; ---- read: the next request as a (web request) record ----------------------------------

(define (client-of request who)
  (or (and (request? request) (assq-ref (request-meta request) 'gchttp-client))
      (%raise-gchttp-error who #f "not a request of the 'gchttp back end")))

(define (make-body-port client)
  "A binary input port over the request body of CLIENT, counting against the limit."
  (let ((c (client-c client))
        (limit (server-body-limit (client-server client)))
        (seen 0))
    (make-custom-binary-input-port
     "gchttp-request-body"
     (lambda (bv start count)
       (let ((n (%gchttp-body-read! c bv start count)))
         (set! seen (+ seen n))
         (when (and limit (> seen limit))
           (set-client-limit-hit! client #t)
           (%raise-gchttp-error 'request-body-port 'GH_EBODYLIMIT
                                (format #f "request body larger than the limit of ~a bytes"
                                        limit)))
         n))
     #f #f #f)))

(define (read-body-bytevector port length limit)
  "The whole body from PORT: LENGTH bytes when declared, else until its end."
  (if (>= length 0)
      (let ((bv (get-bytevector-n port length)))
        (cond ((eof-object? bv) #vu8())
              ((< (bytevector-length bv) length)
               (%raise-gchttp-error 'gchttp-read 'GH_EOF "request body ended early"))
              (else bv)))
      (let ((bv (get-bytevector-all port)))
        (if (eof-object? bv) #vu8() bv))))

;; Answer a request the handler never sees (400, 413) and let its pool thread go.
(define (refuse! server c code)
  (false-if-exception
   (%gchttp-respond-head! c code '(("Content-Length" . "0")) #t))
  (%gchttp-finish (server-backend server) c))

(define (build-client-request server client)
  "The (web request) record of CLIENT, or #f after answering a bad request itself."
  (let* ((c (client-c client))
         (h (%gchttp-head c))
         (headers (map (lambda (p) (cons (car p) (parse-header (car p) (cdr p))))
                       (vector-ref h 4)))
         (length (vector-ref h 6))
         (chunked? (vector-ref h 7))
         (has-body? (or chunked? (vector-ref h 8)))
         (port (and has-body? (make-body-port client))))
    (set-client-body-port! client port)
    (build-request (parse-request-uri (vector-ref h 1))
                   #:method (parse-http-method (vector-ref h 0))
                   #:version (cons (vector-ref h 2) (vector-ref h 3))
                   #:headers headers
                   #:port port
                   #:meta `((gchttp-client . ,client)
                            (remote-addr . ,(vector-ref h 5)))
                   #:validate-headers? #f)))

(define (gchttp-read server)
  "The back end's read: wait for the next request, return (values client request body)."
  (let loop ()
    (let ((c (%gchttp-next (server-backend server))))
      (if (not c)
          (values #f #f #f)             ; closed
          (let* ((client (make-client c server #f #f #f))
                 (request (catch #t
                            (lambda () (build-client-request server client))
                            (lambda (key . args)
                              (refuse! server c 400)
                              #f))))
            (cond
             ((not request) (loop))
             (else
              (let* ((limit (server-body-limit server))
                     (length (or (request-content-length request) -1))
                     (port (client-body-port client)))
                (cond
                 ((and limit (> length limit))
                  (refuse! server c 413)
                  (loop))
                 ((eq? (server-body-mode server) 'port)
                  (fluid-set! %current-client client)
                  (values client request port))
                 ((not port)
                  (fluid-set! %current-client client)
                  (values client request #f))
                 (else
                  (let ((body (catch #t
                                (lambda () (read-body-bytevector port length limit))
                                (lambda (key . args) #f))))
                    (cond
                     (body
                      (fluid-set! %current-client client)
                      (values client request body))
                     (else
                      (refuse! server c (if (client-limit-hit? client) 413 400))
                      (loop))))))))))))))

;;; ---- write: a (web response) record out through gchttp --------------------------------

(define header-names (make-hash-table))
(define (header-name-string sym)
  (or (hashq-ref header-names sym)
      (let ((s (header->string sym)))
        (hashq-set! header-names sym s)
        s)))

;; Values that are not strings or integers go through Guile's header writers; the
;; few a server repeats (content types...) are remembered.
(define header-values (make-hash-table))
(define header-values-count 0)
(define (header-value-string sym v)
  (cond
   ((string? v) v)
   ((and (exact-integer? v) (memq sym '(content-length age max-forwards)))
    (number->string v))
   (else
    (let ((key (cons sym v)))
      (or (hash-ref header-values key)
          (let ((s (call-with-output-string (lambda (p) ((header-writer sym) v p)))))
            (when (> header-values-count 256)
              (hash-clear! header-values)
              (set! header-values-count 0))
            (hash-set! header-values key s)
            (set! header-values-count (+ header-values-count 1))
            s))))))

(define (response-header-strings response drop)
  (let lp ((hs (response-headers response)) (out '()))
    (if (null? hs)
        (reverse! out)
        (let ((k (caar hs)) (v (cdar hs)))
          (lp (cdr hs)
              (if (memq k drop)
                  out
                  (cons (cons (header-name-string k) (header-value-string k v)) out)))))))

(define (benign-write-error? e)
  (and (gchttp-error? e)
       (memq (gchttp-error-code e)
             '(GH_EPIPE GH_ECONNRESET GH_ETIMEDOUT GH_EHANDLERDONE GH_EHIJACKED GH_EOF))))

(define (response-charset response)
  (let ((type (response-content-type response #f)))
    (or (and type (assq-ref (cdr type) 'charset)) "utf-8")))

(define (body-output-port c charset)
  "A binary output port that sends what is written to it as response body, one
chunk per flush (force-output), and Guile's port buffer size otherwise."
  (let ((port (make-custom-binary-output-port
               "gchttp-response-body"
               (lambda (bv start count)
                 (%gchttp-body-write! c bv start count)
                 (%gchttp-flush c)
                 count)
               #f #f #f)))
    (setvbuf port 'block 8192)
    (set-port-encoding! port charset)
    port))

(define (gchttp-write server client response body)
  "The back end's write: send RESPONSE and BODY (a bytevector or #f, as run-server's
sanitize-response leaves them; or the procedure given to streaming-body)."
  (let* ((c (client-c client))
         (backend (server-backend server)))
    (fluid-set! %current-client #f)
    (dynamic-wind
      (lambda () #f)
      (lambda ()
        (unless (%gchttp-hijacked? c)
          (let* ((stream (and (client-stream client)
                              (eqv? (response-content-length response) 0)
                              (or (not body) (zero? (bytevector-length body)))
                              (client-stream client)))
                 (code (response-code response))
                 ;; run-server answers a handler's exception with a bare 500; a body
                 ;; over the limit is the client's fault.
                 (code (if (and (= code 500) (client-limit-hit? client)) 413 code))
                 (close? (memq 'close (response-connection response))))
            (with-exception-handler
                (lambda (e)
                  (unless (benign-write-error? e)
                    (raise-exception e)))
              (lambda ()
                (%gchttp-respond-head! c code
                                       (response-header-strings
                                        response (if stream '(content-length) '()))
                                       close?)
                (cond
                 (stream
                  (let ((port (body-output-port c (response-charset response))))
                    (with-exception-handler
                        (lambda (e)
                          ;; The head is out: cut the connection so that the client
                          ;; sees a truncated body, then report the error.
                          (false-if-exception (gchttp-conn-close (%gchttp-hijack c)))
                          (raise-exception e))
                      (lambda () (stream port) (close-port port)))))
                 ((bytevector? body)
                  (%gchttp-body-write! c body 0 (bytevector-length body)))))
              #:unwind? #t))))
      (lambda ()
        (let ((port (client-body-port client)))
          (when port (close-port port)))
        (%gchttp-finish backend c))))
  (values))

(define (gchttp-close server)
  "The back end's close: stop listening, answer queued requests 503, close connections
and join gchttp's threads."
  (set-server-closed! server #t)
  (%gchttp-close (server-backend server)))

(define-server-impl gchttp
  gchttp-open
  gchttp-read
  gchttp-write
  gchttp-close)

;;; ---- what a handler can do beyond run-server's protocol -------------------------------

(define (request-body-port request)
  "The binary input port that streams REQUEST's body (also request-port), or #f when
the request has none.  With #:request-body 'bytevector it is already at its end."
  (client-body-port (client-of request 'request-body-port)))

(define (streaming-body proc)
  "A response body for run-server that is written as it is produced: return
(values response (streaming-body (lambda (port) ...))).  PROC gets a binary output port
(with the encoding of the response's charset, utf-8 by default); what it writes goes
out chunked, a chunk each time the port's 8 KiB buffer fills or PROC calls
force-output.  The response must not declare a content-length.  Under another back end
(Guile's 'http) PROC writes into run-server's collected body instead."
  (lambda (port)
    (let ((client (fluid-ref %current-client)))
      (if (and client (not (client-stream client)))
          (set-client-stream! client proc)
          (proc port)))))

(define* (hijack-connection request #:optional response)
  "Take over REQUEST's connection: return two values, a binary input port and a binary
output port on it.  When RESPONSE (a (web response) record, e.g. code 101) is given its
head is sent first.  Bytes the client sent after the request head are read first; every
write is sent at once (output is unbuffered).  The connection closes when both ports
are closed.  run-server then sends nothing for this request: return any response.
The ports work from any thread; the handler should return soon (hand them to a thread
of its own) so that the run-server loop goes on."
  (let* ((client (client-of request 'hijack-connection))
         (c (client-c client)))
    (when response
      (%gchttp-respond-head! c (response-code response)
                             (response-header-strings response '()) #f))
    (let* ((conn (%gchttp-hijack c))
           (open 2)
           (done (lambda ()
                   (set! open (- open 1))
                   (when (zero? open) (gchttp-conn-close conn))))
           (in (make-custom-binary-input-port
                "gchttp-hijacked-in"
                (lambda (bv start count) (gchttp-conn-read! conn bv start count))
                #f #f done))
           (out (make-custom-binary-output-port
                 "gchttp-hijacked-out"
                 (lambda (bv start count) (gchttp-conn-write! conn bv start count))
                 #f #f done)))
      (setvbuf out 'none)
      (values in out))))

(define* (close-notify-wait request #:optional timeout)
  "Wait until REQUEST's client goes away (closes or resets its connection) or TIMEOUT
seconds pass (#f: no limit).  Return #t if the client went away, #f on timeout.
Valid while the response has not been sent."
  (%gchttp-close-notify-wait (client-c (client-of request 'close-notify-wait)) timeout))

(define (close-notify-port request)
  "An input port that becomes readable (for select) when REQUEST's client goes away.
It is the caller's: close it when done."
  (let ((fd (%gchttp-close-notify-fd (client-c (client-of request 'close-notify-port)))))
    (fdes->inport fd)))

(define (request-probe request)
  "A probe on gchttp's C request and response behind REQUEST, which does not keep
them alive: (gchttp-probe-collected? probe) becomes #t once the collector found both
unreachable.  For tests."
  (%gchttp-probe (client-c (client-of request 'request-probe))))

;;; ---- run-server: Guile's, with a leaner loop for 'gchttp and #:threads -------------------

(define (gchttp-impl? impl)
  (or (eq? impl 'gchttp) (eq? impl gchttp)))

(define (threads-param params)
  (let lp ((p params))
    (cond ((or (null? p) (null? (cdr p))) 1)
          ((eq? (car p) #:threads) (cadr p))
          (else (lp (cddr p))))))

(define (report-error who key args stack)
  "Print an error the loop recovered from, once, with its backtrace (as run-server's
call-with-error-handling does in batch mode)."
  (let ((port (current-error-port)))
    (format port "~a: an error, answered and logged:~%" who)
    (when stack
      (display-backtrace stack port))
    (print-exception port (and stack (stack-ref stack 0)) key args)
    (force-output port)))

(define (call-recovering who thunk on-error)
  "Call THUNK; if it raises (other than 'quit or 'interrupt, which pass), report the
error with the stack where it was raised and return (ON-ERROR)."
  (let ((tag (make-prompt-tag "gchttp-error")))
    (call-with-prompt tag
      (lambda ()
        (with-throw-handler #t
          thunk
          (lambda (key . args)
            (unless (memq key '(quit interrupt))
              (report-error who key args (make-stack #t 2))
              (abort-to-prompt tag)))))
      (lambda (k) (on-error)))))

(define (call-handler handler request body state)
  "Call HANDLER as run-server's handle-request does, under a default prompt."
  (call-with-prompt (default-prompt-tag)
    (lambda () (apply handler request body state))
    (lambda (k proc) (call-handler (lambda _ (proc k)) request body '()))))

(define (serve-one handler server state)
  "Read one request, call HANDLER, write the response, return the new state: the steps
of run-server's serve-one-client, with the same error answers (a handler's error is
logged once and answered 500), recovering from errors without
call-with-error-handling's per-call cost."
  (call-with-values (lambda () (gchttp-read server))
    (lambda (client request body)
      (if (not client)
          state
          (call-with-values
              (lambda ()
                (call-recovering
                 "gchttp handler"
                 (lambda ()
                   (call-with-values (lambda () (call-handler handler request body state))
                     (lambda (response body . state)
                       (call-with-values (lambda () (guile:sanitize-response request response body))
                         (lambda (response body) (values response body state))))))
                 (lambda () (values (build-response #:code 500) #f state))))
            (lambda (response body state)
              (call-recovering "gchttp write"
                               (lambda () (gchttp-write server client response body))
                               (lambda () #f))
              state))))))

(define* (run-server handler #:optional (impl 'http) (open-params '()) . state)
  "Guile's run-server (see (web server)); for the 'gchttp back end it runs the same
steps (read a request, call HANDLER, sanitize and write the response) in a loop of its
own that recovers from errors without call-with-error-handling's cost per request, and
it takes #:threads: (run-server handler 'gchttp '(#:port 8080 #:threads 16)) runs 16
Scheme threads, each reading a request, calling HANDLER and writing its response, so up
to 16 handlers run at once.  HANDLER must then be safe to run concurrently, and each
thread keeps its own STATE (the extra values a handler returns).  With one thread (the
default) HANDLER runs on the calling thread, one request at a time, as with 'http.
SIGINT closes the server and returns.  Any other back end gets Guile's run-server."
  (if (gchttp-impl? impl)
      (let ((n (threads-param open-params)))
        (run-gchttp handler open-params state (if (exact-integer? n) n 1)))
      (apply (@ (web server) run-server) handler impl open-params state)))

(define (run-gchttp handler open-params state n)
  (let* ((server (parameterize ((%threads-run #t))
                   (guile:open-server gchttp open-params)))
         (loop (lambda ()
                 (let lp ((st state))
                   (unless (server-closed? server)
                     (lp (serve-one handler server st))))))
         (threads (if (> n 1)
                      (map (lambda (i) (call-with-new-thread loop)) (iota n))
                      '()))
         (old #f))
    (dynamic-wind
      (lambda ()
        (set! old (sigaction SIGINT (lambda (sig) (throw 'interrupt)))))
      (lambda ()
        (catch 'interrupt
          (lambda ()
            (if (null? threads)
                (loop)
                (for-each join-thread threads)))
          (lambda _ #f)))
      (lambda ()
        (if (car old)
            (sigaction SIGINT (car old) (cdr old))
            (sigaction SIGINT #f))
        (guile:close-server gchttp server)
        (for-each join-thread threads)))
    (values)))
