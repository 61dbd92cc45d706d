package loadgen

import (
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sleeper waits precisely and cheaply. The runtime's timers wake a blocked program up
// to a millisecond late on Linux (its poller sleeps in whole milliseconds), which
// would add that much to every operation's measured latency. A kernel timer (timerfd)
// waited for in the runtime's own poller wakes within a few microseconds, and the
// goroutine parks meanwhile: no thread sits blocked in a system call, so the
// scheduler hands nothing between threads, as it must around a nanosleep. Where no
// timerfd can be made, it falls back to nanosleep.
type sleeper struct {
	fd  int      // the timerfd, never read through f.Fd (that would make it blocking)
	f   *os.File // nil: use nanosleep
	raw *rawIO
	buf [8]byte
}

func newSleeper() *sleeper {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return &sleeper{fd: -1}
	}
	f := os.NewFile(uintptr(fd), "timerfd")
	raw := newRawIO(f)
	if raw == nil {
		f.Close()
		return &sleeper{fd: -1}
	}
	return &sleeper{fd: fd, f: f, raw: raw}
}

func (s *sleeper) sleep(d time.Duration) {
	if d <= 0 {
		return
	}
	if s.f != nil {
		its := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(d))}
		// Raw, as rawIO explains: setting a timer never blocks.
		_, _, errno := syscall.RawSyscall6(unix.SYS_TIMERFD_SETTIME, uintptr(s.fd), 0, uintptr(unsafe.Pointer(&its)), 0, 0, 0)
		if errno == 0 {
			if _, err := s.raw.read(s.buf[:]); err == nil {
				return
			}
		}
		// A timerfd that fails once is not trusted again.
		s.close()
	}
	nanosleep(d)
}

func (s *sleeper) close() {
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
}

// nanosleep sleeps in the kernel, within about 0.1 ms of d.
func nanosleep(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	for {
		// EINTR: a signal (the runtime's preemption) cut the sleep short; ts holds
		// the rest.
		if err := syscall.Nanosleep(&ts, &ts); err != syscall.EINTR {
			return
		}
	}
}
