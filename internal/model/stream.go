package model

import (
	"math/rand/v2"
	"time"
)

// Op is one request in a generated stream.
type Op struct {
	Key  int           // index of the key, 0 to Keys-1
	At   time.Duration // offset from the stream's start; may go backwards
	Cost int
	Peek bool // a Peek instead of a Take
}

// StreamConfig shapes a random stream.
type StreamConfig struct {
	Ops       int           // number of operations
	Keys      int           // distinct keys, at least 1
	MaxGap    time.Duration // gaps are uniform in [0, MaxGap]
	MaxCost   int           // costs are uniform in [1, MaxCost]; 0 means 1
	JumpEvery int           // on average one clock jump every JumpEvery ops; 0 = none
	MaxJump   time.Duration // jumps are uniform in [-MaxJump, +MaxJump]
	PeekEvery int           // on average one Peek every PeekEvery ops; 0 = none
}

// Stream returns a reproducible random stream for seed.
func Stream(seed uint64, c StreamConfig) []Op {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	ops := make([]Op, c.Ops)
	var at time.Duration
	for i := range ops {
		at += time.Duration(rng.Int64N(int64(c.MaxGap/time.Millisecond)+1)) * time.Millisecond
		if c.JumpEvery > 0 && rng.IntN(c.JumpEvery) == 0 {
			j := time.Duration(rng.Int64N(2*int64(c.MaxJump/time.Millisecond)+1)) * time.Millisecond
			at += j - c.MaxJump
		}
		cost := 1
		if c.MaxCost > 1 {
			cost = 1 + rng.IntN(c.MaxCost)
		}
		ops[i] = Op{Key: rng.IntN(c.Keys), At: at, Cost: cost, Peek: c.PeekEvery > 0 && rng.IntN(c.PeekEvery) == 0}
	}
	return ops
}
