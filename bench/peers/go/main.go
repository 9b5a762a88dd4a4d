// bench/peers/go: Go 1.19 net/http with gchttp's benchmark workloads, standard library only.
//
//	gobench serve [-listen 127.0.0.1:0]   hello (13 bytes, keep-alive) on every path but
//	                                        /hijack, which hijacks and closes; prints the port
//	gobench allocs [-n N] [-count K]       server-side B/op and allocs/op of one keep-alive
//	                                        request (BenchmarkServer) and of one hijack cycle
//	                                        (BenchmarkServerHijack), runtime.MemStats deltas
//	gobench retention [-n N] [-count K]    BenchmarkServerHijackMemoryUsage, reconstructed as in
//	                                        docs/DESIGN.md §5: N hijacked connections
//	                                        held by the user; HeapAlloc after runtime.GC twice,
//	                                        idle and after one read and one write
//
// The in-process clients use raw syscalls on preallocated buffers, so they add (almost)
// nothing to the Go heap: the figures are the server's. Output: Go benchmark lines.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

var hello = []byte("Hello world.\n")

type held struct {
	c  net.Conn
	rw *bufio.ReadWriter
}

var (
	holder   []held
	holdMode int32
	handled  int64
)

func handler(w http.ResponseWriter, r *http.Request) {
	if len(r.URL.Path) >= 2 && r.URL.Path[1] == 'h' { // /hijack or /h/SLOT
		c, rw, err := w.(http.Hijacker).Hijack()
		if err == nil {
			slot := -1
			if len(r.URL.Path) > 3 && r.URL.Path[2] == '/' {
				slot, _ = strconv.Atoi(r.URL.Path[3:])
			}
			if atomic.LoadInt32(&holdMode) == 1 && slot >= 0 && slot < len(holder) {
				holder[slot] = held{c, rw}
			} else {
				c.Close()
			}
		}
		atomic.AddInt64(&handled, 1)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(hello)
}

func startServer(addr string) (int, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return 0, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(handler)}
	go srv.Serve(ln)
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// ---- raw-syscall client -------------------------------------------------------------

func dial(port int) int {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		die(err)
	}
	sa := &syscall.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}
	if err := syscall.Connect(fd, sa); err != nil {
		die(err)
	}
	syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	return fd
}

func writeAll(fd int, b []byte) {
	for len(b) > 0 {
		n, err := syscall.Write(fd, b)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			die(err)
		}
		b = b[n:]
	}
}

var crlf2 = []byte("\r\n\r\n")

// readResponse reads one response with a 13-byte body into buf.
func readResponse(fd int, buf []byte) {
	have := 0
	for {
		n, err := syscall.Read(fd, buf[have:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil || n <= 0 {
			die(fmt.Errorf("read response: %v", err))
		}
		have += n
		if i := bytes.Index(buf[:have], crlf2); i >= 0 && have >= i+4+len(hello) {
			return
		}
	}
}

func waitClose(fd int, buf []byte) {
	for {
		n, err := syscall.Read(fd, buf)
		if err == syscall.EINTR {
			continue
		}
		if n <= 0 {
			return
		}
	}
}

func waitHandled(target int64) {
	end := time.Now().Add(30 * time.Second)
	for atomic.LoadInt64(&handled) < target {
		if time.Now().After(end) {
			die(fmt.Errorf("handlers did not finish"))
		}
		time.Sleep(200 * time.Microsecond)
	}
	time.Sleep(20 * time.Millisecond) // let the connection goroutines exit
}

func die(err error) {
	fmt.Fprintln(os.Stderr, "gobench:", err)
	os.Exit(1)
}

func heapAfterGC() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// ---- modes --------------------------------------------------------------------------

func allocs(n, count int) {
	port, err := startServer("127.0.0.1:0")
	if err != nil {
		die(err)
	}
	buf := make([]byte, 4096)
	req := []byte("GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
	hreq := []byte("GET /hijack HTTP/1.1\r\nHost: bench\r\n\r\n")
	fd := dial(port)
	var m0, m1 runtime.MemStats
	for i := 0; i < 1000; i++ { // warm-up
		writeAll(fd, req)
		readResponse(fd, buf)
	}
	for k := 0; k < count; k++ {
		runtime.ReadMemStats(&m0)
		t0 := time.Now()
		for i := 0; i < n; i++ {
			writeAll(fd, req)
			readResponse(fd, buf)
		}
		el := time.Since(t0)
		runtime.ReadMemStats(&m1)
		fmt.Printf("BenchmarkServer-%d \t%8d\t%10.0f ns/op\t%8.0f B/op\t%6.1f allocs/op\n",
			runtime.GOMAXPROCS(0), n, float64(el.Nanoseconds())/float64(n),
			float64(m1.TotalAlloc-m0.TotalAlloc)/float64(n), float64(m1.Mallocs-m0.Mallocs)/float64(n))
	}
	syscall.Close(fd)
	hn := n / 5
	for k := 0; k < count; k++ {
		h0 := atomic.LoadInt64(&handled)
		runtime.ReadMemStats(&m0)
		t0 := time.Now()
		for i := 0; i < hn; i++ {
			fd := dial(port)
			writeAll(fd, hreq)
			waitClose(fd, buf)
			syscall.Close(fd)
		}
		el := time.Since(t0)
		waitHandled(h0 + int64(hn))
		runtime.ReadMemStats(&m1)
		fmt.Printf("BenchmarkServerHijack-%d \t%8d\t%10.0f ns/op\t%8.0f B/op\t%6.1f allocs/op\n",
			runtime.GOMAXPROCS(0), hn, float64(el.Nanoseconds())/float64(hn),
			float64(m1.TotalAlloc-m0.TotalAlloc)/float64(hn), float64(m1.Mallocs-m0.Mallocs)/float64(hn))
	}
}

func holdRound(port, n int, fds []int) {
	atomic.StoreInt32(&holdMode, 1)
	h0 := atomic.LoadInt64(&handled)
	var req [64]byte
	for i := 0; i < n; i++ {
		fds[i] = dial(port)
		b := strconv.AppendInt(append(req[:0], "GET /h/"...), int64(i), 10)
		b = append(b, " HTTP/1.1\r\nHost: bench\r\n\r\n"...)
		writeAll(fds[i], b)
	}
	waitHandled(h0 + int64(n))
}

func releaseRound(n int, fds []int) {
	for i := 0; i < n; i++ {
		if holder[i].c != nil {
			holder[i].c.Close()
		}
		holder[i] = held{}
		syscall.Close(fds[i])
	}
}

func retention(n, count int) {
	holder = make([]held, n)
	fds := make([]int, n)
	one := make([]byte, 1)
	x := []byte("x")
	port, err := startServer("127.0.0.1:0")
	if err != nil {
		die(err)
	}
	for k := 0; k < count; k++ {
		holdRound(port, n, fds) // warm-up round
		releaseRound(n, fds)
		live0 := heapAfterGC()
		t0 := time.Now()
		holdRound(port, n, fds)
		el := time.Since(t0)
		live1 := heapAfterGC()
		for i := 0; i < n; i++ {
			writeAll(fds[i], x)
		}
		for i := 0; i < n; i++ {
			if _, err := holder[i].rw.ReadByte(); err != nil {
				die(err)
			}
			holder[i].rw.WriteByte('y')
			if err := holder[i].rw.Flush(); err != nil {
				die(err)
			}
		}
		for i := 0; i < n; i++ {
			if m, _ := syscall.Read(fds[i], one); m != 1 {
				die(fmt.Errorf("short read"))
			}
		}
		live2 := heapAfterGC()
		p := runtime.GOMAXPROCS(0)
		ns := float64(el.Nanoseconds()) / float64(n)
		fmt.Printf("BenchmarkServerHijackMemoryUsage-%d \t%8d\t%10.0f ns/op\t%8.1f retained_B/op\n",
			p, n, ns, (float64(live2)-float64(live0))/float64(n))
		fmt.Printf("BenchmarkServerHijackMemoryUsage/idle-%d \t%8d\t%10.0f ns/op\t%8.1f retained_B/op\n",
			p, n, ns, (float64(live1)-float64(live0))/float64(n))
		runtime.KeepAlive(holder)
		releaseRound(n, fds)
	}
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: gobench serve|allocs|retention [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:0", "serve: address")
	n := fs.Int("n", 20000, "operations (allocs) or held connections (retention)")
	count := fs.Int("count", 3, "repetitions")
	fs.Parse(os.Args[2:])
	switch os.Args[1] {
	case "serve":
		port, err := startServer(*listen)
		if err != nil {
			die(err)
		}
		fmt.Printf("listening on port %d\n", port)
		select {}
	case "allocs":
		allocs(*n, *count)
	case "retention":
		retention(*n, *count)
	default:
		die(fmt.Errorf("unknown mode %q", os.Args[1]))
	}
}
