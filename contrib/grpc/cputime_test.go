package ratekitgrpc_test

import (
	"runtime"
	"syscall"
	"testing"
	"time"
)

// loopCPU runs body in a b.Loop and reports CPU time per iteration as
// cpu-ns/op beside the wall-clock ns/op: of the benchmark's locked thread
// when thread is true, else of the whole process (every goroutine of a
// client and server talking over loopback, and the garbage collector). On
// a machine shared with other work, wall time also counts waiting for a
// core; CPU time does not. Where CPU time cannot be read, no metric is
// reported.
func loopCPU(b *testing.B, thread bool, body func()) {
	who := 0 // RUSAGE_SELF
	if thread {
		who = 1 // RUSAGE_THREAD
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
	}
	before, ok := cpuTime(who)
	for b.Loop() {
		body()
	}
	if after, ok2 := cpuTime(who); ok && ok2 && b.N > 0 {
		b.ReportMetric(float64(after-before)/float64(b.N), "cpu-ns/op")
	}
}

// cpuTime returns the user and system CPU time getrusage reports for who
// (Linux), microsecond resolution.
func cpuTime(who int) (time.Duration, bool) {
	var ru syscall.Rusage
	if runtime.GOOS != "linux" || syscall.Getrusage(who, &ru) != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
