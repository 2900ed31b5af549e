package retry

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// fast keeps the shape of the default policy with waits short enough for
// unit tests.
func fast(steps int) wait.Backoff {
	b := DefaultBackoff()
	b.Duration = time.Microsecond
	b.Cap = time.Second
	b.Steps = steps
	return b
}

func TestRetryWithBackoffAttempts(t *testing.T) {
	tests := []struct {
		name     string
		errs     []error // what each attempt returns; the last repeats
		wantN    int
		wantErr  error
		wantNone bool
	}{
		{name: "success first", errs: []error{nil}, wantN: 1, wantNone: true},
		{name: "success after two transient", errs: []error{syscall.ECONNREFUSED, syscall.ECONNRESET, nil}, wantN: 3, wantNone: true},
		{name: "permanent attempted once", errs: []error{syscall.EINVAL}, wantN: 1, wantErr: syscall.EINVAL},
		{name: "retryable attempted steps times", errs: []error{syscall.ECONNREFUSED}, wantN: DefaultSteps, wantErr: syscall.ECONNREFUSED},
		{name: "transient then permanent stops", errs: []error{syscall.ETIMEDOUT, syscall.EACCES}, wantN: 2, wantErr: syscall.EACCES},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := 0
			err := RetryWithBackoff(context.Background(), fast(DefaultSteps), func(context.Context) error {
				e := tt.errs[min(n, len(tt.errs)-1)]
				n++
				return e
			})
			if n != tt.wantN {
				t.Errorf("attempts = %d, want %d", n, tt.wantN)
			}
			if tt.wantNone {
				if err != nil {
					t.Fatalf("err = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want it to wrap %v", err, tt.wantErr)
			}
			if want := fmt.Sprintf("after %d attempt(s)", tt.wantN); !strings.Contains(err.Error(), want) {
				t.Errorf("err = %q, want it to say %q", err, want)
			}
		})
	}
}

func TestRetryWithBackoffCancel(t *testing.T) {
	b := DefaultBackoff()
	b.Duration = time.Hour // only cancellation can end the wait
	b.Cap = 2 * time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	attempted := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- RetryWithBackoff(ctx, b, func(context.Context) error {
			close(attempted)
			return syscall.ECONNREFUSED
		})
	}()
	<-attempted
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if elapsed := time.Since(start); elapsed > 50*time.Millisecond {
			t.Errorf("returned %v after cancel, want within 50ms", elapsed)
		}
		if !errors.Is(err, context.Canceled) || !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("err = %v, want it to wrap context.Canceled and the last error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("RetryWithBackoff did not return after cancel")
	}
}

func TestRetryWithBackoffDoneContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n := 0
	err := RetryWithBackoff(ctx, fast(3), func(context.Context) error { n++; return nil })
	if n != 0 || !errors.Is(err, context.Canceled) {
		t.Fatalf("attempts = %d, err = %v; want no attempt and context.Canceled", n, err)
	}
}

// TestDefaultBackoffJitter samples the waits of the default policy: each
// must stay in the band wait.Backoff defines for 10% jitter, [d, 1.1·d],
// and the samples must spread across that band rather than sit at one end.
func TestDefaultBackoffJitter(t *testing.T) {
	const samples = 2000
	for step := range DefaultSteps - 1 {
		base := time.Duration(float64(DefaultFirstDelay) * math.Pow(DefaultFactor, float64(step)))
		lo, hi := base, time.Duration(float64(base)*(1+DefaultJitter))
		var below, above int // halves of the band
		for range samples {
			b := DefaultBackoff()
			var d time.Duration
			for range step + 1 {
				d = b.Step()
			}
			if d < lo || d > hi {
				t.Fatalf("step %d: wait %v outside [%v, %v]", step, d, lo, hi)
			}
			if d < lo+(hi-lo)/2 {
				below++
			} else {
				above++
			}
		}
		// Uniform jitter puts about half in each half; 35% is far outside
		// chance for 2000 samples.
		if below < samples*35/100 || above < samples*35/100 {
			t.Errorf("step %d: %d waits in the lower half, %d in the upper: not spread", step, below, above)
		}
	}
}

func TestDefaultBackoffCapDoesNotCutAttempts(t *testing.T) {
	longest := time.Duration(float64(DefaultFirstDelay) * math.Pow(DefaultFactor, DefaultSteps-1))
	if DefaultCap < longest {
		t.Fatalf("cap %v is below the last wait %v: wait.Backoff would end the steps early", DefaultCap, longest)
	}
}

func TestIsRetryableError(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{syscall.ECONNREFUSED, true},
		{fmt.Errorf("write /dev/nvme-fabrics: %w", syscall.ECONNREFUSED), true},
		{&os.PathError{Op: "write", Path: "/dev/nvme-fabrics", Err: syscall.ETIMEDOUT}, true},
		{syscall.EHOSTUNREACH, true},
		{syscall.ENETUNREACH, true},
		{syscall.EAGAIN, true},
		{syscall.EINTR, true},
		{syscall.EBUSY, true},
		{syscall.EINVAL, false},
		{syscall.EACCES, false},
		{syscall.EPERM, false},
		{syscall.EALREADY, false},
		{&os.PathError{Op: "open", Path: "/dev/nvme-fabrics", Err: syscall.ENOENT}, false},
		{context.Canceled, false},
		{context.DeadlineExceeded, false},
		{fmt.Errorf("connect: %w", context.DeadlineExceeded), false},
		// The text of a context error must not win over its type.
		{fmt.Errorf("connection refused, then: %w", context.Canceled), false},
		{permanentErr{"connection refused"}, false},
		// Text never decides: it may quote what a user wrote, such as an
		// NQN made to look like a network failure.
		{fmt.Errorf(`subsystem "nqn.2026-01.x:connection refused" not found: %w`, syscall.ENOENT), false},
		{errors.New(`subsystem "nqn.2026-01.x:connection refused" not found`), false},
		{errors.New("Failed to write to /dev/nvme-fabrics: Connection refused"), false},
		{errors.New("invalid argument"), false},
		// Network errors that say they timed out are transient.
		{&net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}, true},
		{&net.DNSError{Err: "i/o timeout", Name: "target.example", IsTimeout: true}, true},
		{&net.DNSError{Err: "no such host", Name: "target.example", IsNotFound: true}, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.err), func(t *testing.T) {
			if got := IsRetryableError(tt.err); got != tt.want {
				t.Errorf("IsRetryableError(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

type permanentErr struct{ msg string }

func (e permanentErr) Error() string   { return e.msg }
func (e permanentErr) Permanent() bool { return true }
