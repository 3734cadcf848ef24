package ratekitecho_test

import (
	"runtime"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// loopCPU runs body in a b.Loop on one locked OS thread and reports the
// thread's CPU time per iteration as cpu-ns/op beside the wall-clock
// ns/op. On a machine shared with other work, wall time also counts the
// time the thread waited for a core; CPU time does not, so comparisons
// stay meaningful under load. Where the thread's CPU time cannot be read,
// no metric is reported.
func loopCPU(b *testing.B, body func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before, ok := threadCPU()
	for b.Loop() {
		body()
	}
	if after, ok2 := threadCPU(); ok && ok2 && b.N > 0 {
		b.ReportMetric(float64(after-before)/float64(b.N), "cpu-ns/op")
	}
}

// threadClock returns the calling thread's CPU clock
// (CLOCK_THREAD_CPUTIME_ID, Linux), nanosecond resolution, for timing
// short blocks of work.
func threadClock() (time.Duration, bool) {
	const clockThreadCPUTime = 3 // CLOCK_THREAD_CPUTIME_ID
	var ts syscall.Timespec
	if runtime.GOOS != "linux" {
		return 0, false
	}
	if _, _, e := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTime, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		return 0, false
	}
	return time.Duration(ts.Nano()), true
}

// threadCPU returns the calling thread's user and system CPU time
// (getrusage RUSAGE_THREAD, Linux), microsecond resolution.
func threadCPU() (time.Duration, bool) {
	const rusageThread = 1 // RUSAGE_THREAD
	var ru syscall.Rusage
	if runtime.GOOS != "linux" || syscall.Getrusage(rusageThread, &ru) != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
