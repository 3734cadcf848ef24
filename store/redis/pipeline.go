package redis

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Auto-pipelining. Under concurrency, go-redis spends most of a decision's
// client CPU in two system calls per command (write the request, read the
// reply) and in waking the goroutine that waits for it, and redis-server
// spends as much again reading and answering each connection separately. On
// a machine where the client and the server share a few cores, that is
// what bounds throughput. So Take hands its EVALSHA to a queue; one of at
// most maxFlushers short-lived goroutines takes everything queued and
// writes it as one go-redis pipeline on one connection, then hands each
// caller its own reply. Every decision is still exactly one EVALSHA and
// one reply (INFO commandstats counts one call per decision): only the
// writes and reads are shared.
//
// Each caller keeps its own deadline: it waits for its reply, its context
// and its own timer, whichever comes first. A call abandoned before a
// flusher took it is never sent. A batch runs under the latest deadline of
// its members, so no member's command is cut short by another's; a
// flusher therefore lives at most one Timeout after its last batch was
// queued, and exits as soon as the queue is empty, so nothing outlives the
// traffic and Close has nothing to stop. When nothing is in flight, a Take
// runs alone on the caller's goroutine, as without pipelining, so a lone
// caller pays no hand-off.
//
// Only a *goredis.Client (one server: standalone or Sentinel) pipelines. A
// Cluster or Ring pipeline returns when its slowest node answers, so one
// dead primary would stall callers whose keys live on healthy nodes.

// maxFlushers is how many batches may be in flight at once (each on its own
// connection): one being executed by the server while the next is written
// keeps the server busy without splitting the queue into small batches.
const maxFlushers = 2

// Call states: queued until a flusher takes it (sent) or its caller gives up
// first (abandoned, never sent).
const (
	callQueued int32 = iota
	callSent
	callAbandoned
)

// call is one queued decision. The caller owns it again once done has fired
// (the flusher touches nothing after signalling), so calls are pooled; an
// abandoned call is left to the garbage collector.
type call struct {
	cmd      *goredis.Cmd
	deadline time.Time
	state    atomic.Int32
	done     chan struct{} // buffered 1: the flusher never blocks
	timer    *time.Timer
}

var callPool = sync.Pool{New: func() any { return &call{done: make(chan struct{}, 1)} }}

// pipelineClient is what auto-pipelining needs from the client.
type pipelineClient interface {
	Pipeline() goredis.Pipeliner
}

// processClient runs a prepared command; every go-redis client has it. The
// direct path uses it to send the store's own argument list instead of
// having EvalSha copy it into a new one.
type processClient interface {
	Process(ctx context.Context, cmd goredis.Cmder) error
}

// batcher queues calls and runs flushers.
type batcher struct {
	client  pipelineClient
	src     string // the script, for EVAL after NOSCRIPT
	mu      sync.Mutex
	queue   []*call
	running int          // flushers alive
	direct  int          // callers executing alone (nothing else was in flight)
	batches atomic.Int64 // pipelines sent, for tests
}

// do runs cmd (an EVALSHA built by Store.evalsha) and returns its reply, or
// that of the EVAL sent after NOSCRIPT. deadline is the caller's own: the
// earlier of its context's and the store's Timeout. exec runs cmd alone,
// synchronously, when nothing else is in flight, so that a lone caller pays
// no hand-off to a flusher.
func (b *batcher) do(ctx context.Context, cmd *goredis.Cmd, deadline time.Time, exec func(context.Context, *goredis.Cmd) (any, error)) (any, error) {
	b.mu.Lock()
	if b.running == 0 && b.direct == 0 {
		b.direct++
		b.mu.Unlock()
		reply, err := exec(ctx, cmd)
		b.mu.Lock()
		b.direct--
		b.mu.Unlock()
		return reply, err
	}
	c := callPool.Get().(*call)
	c.cmd, c.deadline = cmd, deadline
	c.state.Store(callQueued)
	b.queue = append(b.queue, c)
	start := b.running < maxFlushers
	if start {
		b.running++
	}
	b.mu.Unlock()
	if start {
		go b.flush()
	}

	wait := time.Until(deadline)
	if c.timer == nil {
		c.timer = time.NewTimer(wait)
	} else {
		c.timer.Reset(wait)
	}
	var err error
	select {
	case <-c.done:
		c.timer.Stop()
		reply, err := c.cmd.Result()
		c.cmd = nil
		callPool.Put(c)
		return reply, err
	case <-ctx.Done():
		err = ctx.Err()
	case <-c.timer.C:
		err = context.DeadlineExceeded
	}
	c.timer.Stop()
	// Given up. If no flusher took the call yet it is never sent: the
	// request certainly did not count. Otherwise its reply may still come
	// and is dropped, as when a direct call times out after writing.
	c.state.CompareAndSwap(callQueued, callAbandoned)
	return nil, err
}

// flush executes queued calls, batch after batch, until the queue is empty.
func (b *batcher) flush() {
	var batch []*call
	var cmds []goredis.Cmder
	for {
		b.mu.Lock()
		if len(b.queue) == 0 {
			b.running--
			b.mu.Unlock()
			return
		}
		// Swap buffers: the queue continues in this goroutine's spare one.
		batch, b.queue = b.queue, batch[:0]
		b.mu.Unlock()
		cmds = b.exec(batch, cmds[:0])
		clear(batch)
		clear(cmds)
	}
}

// exec sends the live calls of batch as one pipeline, re-sends those that
// found no script as EVAL in a second one, and signals every call taken.
func (b *batcher) exec(batch []*call, cmds []goredis.Cmder) []goredis.Cmder {
	var deadline time.Time
	live := batch[:0]
	for _, c := range batch {
		if !c.state.CompareAndSwap(callQueued, callSent) {
			continue // its caller gave up before it was sent
		}
		if c.deadline.After(deadline) {
			deadline = c.deadline
		}
		live = append(live, c)
		cmds = append(cmds, c.cmd)
	}
	if len(live) == 0 {
		return cmds
	}
	b.batches.Add(1)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	pipe := b.client.Pipeline()
	pipe.BatchProcess(ctx, cmds...)
	pipe.Exec(ctx) // each command carries its own error
	var retry []*call
	for _, c := range live {
		if isNoScript(c.cmd.Err()) {
			retry = append(retry, c)
		}
	}
	if len(retry) > 0 {
		// The server lost its script cache (restart, SCRIPT FLUSH,
		// failover): send the script itself, as goredis.Script.Run does.
		// The first EVAL loads it again for everyone after.
		evals := make([]goredis.Cmder, len(retry))
		for i, c := range retry {
			args := append([]any(nil), c.cmd.Args()...)
			args[0], args[1] = "eval", b.src
			eval := goredis.NewCmd(ctx, args...)
			evals[i] = eval
			c.cmd = eval
		}
		pipe = b.client.Pipeline()
		pipe.BatchProcess(ctx, evals...)
		pipe.Exec(ctx)
	}
	cancel()
	for _, c := range live {
		c.done <- struct{}{}
	}
	return cmds
}

// isNoScript reports a NOSCRIPT reply: the server does not have the script.
func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}
