package redis

import (
	"context"
	"crypto/rand"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ratekit/ratekit/store"
	"github.com/ratekit/ratekit/window"
)

// startCluster starts a Redis Cluster of 3 primaries, each with replicas
// replicas, on loopback, with extra arguments for every server, and returns
// its nodes once every node reports cluster_state:ok, sees every node
// connected, and every replica's link to its primary is up.
func startCluster(t *testing.T, replicas int, extra ...string) []*server {
	t.Helper()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		skipOrFail(t, "redis-cli not on PATH: %v", err)
	}
	nodes := make([]*server, 3*(1+replicas))
	args := []string{"--cluster", "create"}
	for i := range nodes {
		// Each server runs in its own t.TempDir, so one config file name
		// cannot collide.
		nodes[i] = startServer(t, append([]string{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"}, extra...)...)
		args = append(args, nodes[i].Addr)
	}
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	ctx := context.Background()
	for _, n := range nodes {
		c := newClient(t, n.Addr)
		deadline := time.Now().Add(15 * time.Second)
		for !clusterSettled(ctx, c, len(nodes)) {
			if time.Now().After(deadline) {
				t.Fatalf("node %s: cluster not settled after 15s:\n%s\n%s", n.Addr, c.ClusterInfo(ctx).Val(), c.ClusterNodes(ctx).Val())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nodes
}

// TestR24ClusterSlotSafety: on a 3-primary cluster, 10,000 random
// identities (plus the hostile ones) give no CROSSSLOT or other error, the
// m and s keys of each identity hash to the same slot by the server's own
// CLUSTER KEYSLOT, and keys land on all 3 nodes with none holding more
// than half.
func TestR24ClusterSlotSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts a 3-node cluster")
	}
	nodes := startCluster(t, 0, "--cluster-node-timeout", "2000")
	addrs := make([]string, len(nodes))
	for i, n := range nodes {
		addrs[i] = n.Addr
	}
	cc := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs, ContextTimeoutEnabled: true, MaxRetries: -1})
	t.Cleanup(func() { cc.Close() })
	s := newStore(t, cc, Config{Timeout: 5 * time.Second})
	p := window.Default()

	ids := hostileIdentities()
	for range 10_000 {
		b := make([]byte, 1+len(ids)%40)
		rand.Read(b)
		ids = append(ids, b)
	}
	var wg sync.WaitGroup
	var failed atomic.Int64
	var firstErr atomic.Value
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(ids); i += 8 {
				if _, err := s.Take(context.Background(), store.Request{Key: keyOf(ids[i]), Policy: &p, Cost: 1}); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	wg.Wait()
	if f := failed.Load(); f != 0 {
		t.Fatalf("%d of %d Takes failed, first: %v", f, len(ids), firstErr.Load())
	}

	// The server's own slot for each identity's m and s keys.
	ctx := context.Background()
	node := newClient(t, nodes[0].Addr)
	pipe := node.Pipeline()
	type pair struct{ m, s *goredis.IntCmd }
	pairs := make([]pair, 0, len(ids))
	for _, id := range ids {
		m := Key("", keyOf(id))
		pairs = append(pairs, pair{pipe.ClusterKeySlot(ctx, m), pipe.ClusterKeySlot(ctx, strings.TrimSuffix(m, ":m")+":s")})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatalf("CLUSTER KEYSLOT: %v", err)
	}
	for i, pr := range pairs {
		if pr.m.Val() != pr.s.Val() {
			t.Fatalf("identity %d: m key in slot %d, s key in slot %d", i, pr.m.Val(), pr.s.Val())
		}
	}

	var total int64
	sizes := make([]int64, len(nodes))
	for i, n := range nodes {
		sizes[i] = newClient(t, n.Addr).DBSize(ctx).Val()
		total += sizes[i]
	}
	for i, n := range sizes {
		if n == 0 || 2*n > total {
			t.Errorf("node %d holds %d of %d keys; want some, and at most half", i, n, total)
		}
	}
	t.Logf("keys per node: %v (of %d)", sizes, total)
	if msg := fmt.Sprint(firstErr.Load()); strings.Contains(msg, "CROSSSLOT") {
		t.Errorf("CROSSSLOT error: %s", msg)
	}
}
