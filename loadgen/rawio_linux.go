package loadgen

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// rawIO reads and writes a non-blocking socket (or timerfd) with system calls the Go
// scheduler does not see, waiting for readiness in the runtime's poller as net does.
//
// Why: every system call made the ordinary way first tells the runtime's monitor
// thread (sysmon), and when the program was idle that thread is asleep and must be
// woken. An open-loop client at 2K ops/s goes idle between operations, so nearly
// every read and write woke sysmon, which then slept again: a fifth of the client's
// CPU went to those two context switches. A non-blocking read or write returns at
// once, so making it invisible to the scheduler cannot hold up other goroutines.
type rawIO struct{ rc syscall.RawConn }

func newRawIO(c any) *rawIO {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return &rawIO{rc: rc}
}

func (r *rawIO) read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n uintptr
	var errno syscall.Errno
	err := r.rc.Read(func(fd uintptr) bool {
		for {
			n, _, errno = syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
			if errno != syscall.EINTR {
				return errno != syscall.EAGAIN
			}
		}
	})
	switch {
	case err != nil:
		return 0, unwrapOp(err)
	case errno != 0:
		return 0, os.NewSyscallError("read", errno)
	case n == 0:
		return 0, io.EOF
	}
	return int(n), nil
}

// unwrapOp takes off the "raw-read" or "raw-write" net.OpError that RawConn puts
// around a poller error (deadline, closed), so that opError names the read or write.
func unwrapOp(err error) error {
	if oe, ok := err.(*net.OpError); ok {
		return oe.Err
	}
	return err
}

func (r *rawIO) write(p []byte) (int, error) {
	written, zeroWrite := 0, false
	var errno syscall.Errno
	err := r.rc.Write(func(fd uintptr) bool {
		for written < len(p) {
			n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[written])), uintptr(len(p)-written))
			switch e {
			case 0:
				if n == 0 {
					zeroWrite = true
					return true
				}
				written += int(n)
			case syscall.EINTR:
			case syscall.EAGAIN:
				return false // wait until the socket takes more
			default:
				errno = e
				return true
			}
		}
		return true
	})
	switch {
	case err != nil:
		err = unwrapOp(err)
	case errno != 0:
		err = os.NewSyscallError("write", errno)
	case zeroWrite:
		err = io.ErrUnexpectedEOF // as the poller's own Write says it
	}
	return written, err
}

// opError wraps an error the way net.Conn's own Read and Write do, so that callers
// and the error classifier see the same thing either way.
func opError(op string, c net.Conn, err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	e := &net.OpError{Op: op, Net: "tcp", Addr: c.RemoteAddr(), Err: err}
	if a := c.LocalAddr(); a != nil {
		e.Net, e.Source = a.Network(), a
	}
	return e
}
