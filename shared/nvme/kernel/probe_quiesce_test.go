package kernel

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"
)

// An unmount waits for the probe writing in the mount, and no probe starts
// while it runs: the probe's open file would make the unmount fail with
// EBUSY.
func TestQuiesceWaitsForTheProbeAndHoldsOffNewOnes(t *testing.T) {
	synctest.Test(t, testQuiesce)
}

func testQuiesce(t *testing.T) {
	dir := t.TempDir()
	info := filepath.Join(t.TempDir(), "mountinfo")
	if err := os.WriteFile(info, []byte("41 25 259:0 / "+dir+" rw,relatime shared:20 - ext4 /dev/nvme0n1 rw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	writing, release := make(chan struct{}), make(chan struct{})
	writes := 0
	p := newWriteProber(info, func(string) error {
		writes++
		close(writing)
		<-release
		return nil
	})
	go func() { _, _, _ = p.check(dir) }()
	<-writing

	quiesced := make(chan func(), 1)
	go func() {
		resume, err := p.quiesce(context.Background(), dir)
		if err != nil {
			t.Error(err)
		}
		quiesced <- resume
	}()
	synctest.Wait() // every goroutine of the bubble is blocked now
	select {
	case <-quiesced:
		t.Fatal("quiesce returned while a probe was writing")
	default:
	}
	close(release)
	resume := <-quiesced
	if _, msg, err := p.check(dir); err != nil || msg != "" || writes != 1 {
		t.Fatalf("a probe ran on a quiesced path: %d writes, %q, %v", writes, msg, err)
	}
	resume()

	// A quiesce that cannot wait any longer says what it waited for.
	writing, release = make(chan struct{}), make(chan struct{})
	go func() { _, _, _ = p.check(dir) }()
	<-writing
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := p.quiesce(ctx, dir); err == nil {
		t.Fatal("quiesce returned nil while the probe still wrote")
	}
	close(release)
}
