package driver_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nvmeof/nvmeof/shared/nvme/kernel/kerneltest"
)

// BenchmarkConcurrentStage stages 50 volumes on 50 subsystems at once and
// reports how long that takes relative to staging one (the bound
// is 2). On tmpfs the state dir's fsyncs cost nothing, which isolates the
// plugin's own locking; on a disk they queue in the file system's journal.
func BenchmarkConcurrentStage(b *testing.B) {
	for _, tc := range []struct {
		name    string
		tmpfs   bool
		latency time.Duration
	}{
		{"tmpfs", true, 0}, {"tmpfs/connect=20ms", true, 20 * time.Millisecond},
		{"disk", false, 0}, {"disk/connect=20ms", false, 20 * time.Millisecond},
	} {
		b.Run(tc.name, func(b *testing.B) {
			base := b.TempDir()
			if tc.tmpfs {
				root, err := os.MkdirTemp("/dev/shm", "nvmeof-bench-")
				if err != nil {
					b.Skipf("no tmpfs at /dev/shm: %v", err)
				}
				b.Cleanup(func() { _ = os.RemoveAll(root) })
				base = root
			}
			benchConcurrentStage(b, base, tc.latency)
		})
	}
}

// benchConcurrentStage runs under base with the simulated kernel taking
// latency per connect.
func benchConcurrentStage(b *testing.B, base string, latency time.Duration) {
	const n = 50
	var one, many time.Duration
	for b.Loop() {
		b.StopTimer()
		root, err := os.MkdirTemp(base, "node-")
		if err != nil {
			b.Fatal(err)
		}
		// Connects of different subsystems may overlap: the benchmark
		// measures the driver's own locking, not the kernel's mutex.
		e := newEnvIn(b, root, kerneltest.WithConcurrentConnects())
		e.fake.SetConnectLatency(latency)
		for i := range n {
			e.fake.AddTarget("127.0.0.1", "4420", fmt.Sprintf("nqn.2026-01.io.nvmeof.bench:%d", i), kerneltest.Namespace{NSID: 1, SizeBytes: mib})
		}
		b.StartTimer()
		start := time.Now()
		if _, err := e.drv.NodeStageVolume(context.Background(), e.stageReq("v0", "nqn.2026-01.io.nvmeof.bench:0", "1", blockCap())); err != nil {
			b.Fatal(err)
		}
		one += time.Since(start)
		start = time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := 1; i <= n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := fmt.Sprintf("v%d", i)
				_, err := e.drv.NodeStageVolume(context.Background(), e.stageReq(id, fmt.Sprintf("nqn.2026-01.io.nvmeof.bench:%d", i%n), "1", blockCap()))
				errs <- err
			}()
		}
		wg.Wait()
		many += time.Since(start)
		close(errs)
		for err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(one.Microseconds())/float64(b.N), "µs/one-stage")
	b.ReportMetric(float64(many.Microseconds())/float64(b.N), "µs/50-stages")
	b.ReportMetric(float64(many)/float64(one), "ratio")
}
