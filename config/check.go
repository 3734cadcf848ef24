package config

import (
	"log/slog"

	"github.com/ratekit/ratekit/middleware"
	"github.com/ratekit/ratekit/store/memory"
)

// backstop builds a throwaway limiter from f on a memory store, the way
// Build and middleware.New would, and records any problem they report that
// the decoder's own checks (which carry positions) did not. While those
// checks match middleware's, it adds nothing; it keeps a file that a newer
// middleware would refuse from passing here. Middleware has no exported
// validation of a Config short of New, so this is it.
func (d *decoder) backstop(f *File) {
	cfg, err := f.config()
	if err != nil {
		d.errs = append(d.errs, err.(*Error))
		return
	}
	var mc memory.Config
	if m := f.Store.Memory; m != nil {
		mc = memory.Config{MaxKeys: m.MaxKeys, Shards: m.Shards, SweepInterval: m.SweepInterval}
	}
	ms, err := memory.New(mc)
	if err != nil {
		d.errs = append(d.errs, &Error{File: d.file, Field: "store.memory", Err: err})
		return
	}
	defer ms.Close()
	cfg.Store = ms
	if len(cfg.HashKey) == 0 {
		cfg.HashKey = []byte("config: the throwaway limiter's key") // spares New a random read
	}
	cfg.Logger = slog.New(slog.DiscardHandler)
	lim, err := middleware.New(cfg)
	if err != nil {
		d.errs = append(d.errs, &Error{File: d.file, Err: err})
		return
	}
	lim.Close()
}
