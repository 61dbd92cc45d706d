package loadgen

import (
	"syscall"
	"time"
)

// preciseSleep sleeps in the kernel (nanosleep), which on Linux wakes within about
// 0.1 ms, where the Go runtime's timers wake up to 1 ms late.
func preciseSleep(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	for {
		// EINTR: a signal (the runtime's preemption) cut the sleep short; ts holds
		// the rest.
		if err := syscall.Nanosleep(&ts, &ts); err != syscall.EINTR {
			return
		}
	}
}
