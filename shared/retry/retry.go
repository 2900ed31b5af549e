// Package retry runs operations against NVMe targets again when they fail
// for reasons that pass: a target rebooting, a listener not up yet, a
// network blip. It adds 10% jitter to every wait, so that when a target
// comes back the nodes of a cluster do not reconnect in lockstep.
package retry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// Defaults of DefaultBackoff.
//
// The first retry comes after 250 ms: a refused connect is answered in a
// few milliseconds, and a target that restarts its listener is usually
// back within a second. Doubling reaches 4 s by the sixth attempt, so six
// attempts span about 8 s (at most 8.5 s with jitter): long enough to ride
// out a target restart, short enough that the orchestrator's own retry of
// the RPC (Nomad: 2 min per try) takes over with fresh state. Cap is above
// the longest wait on purpose: wait.Backoff ends the steps once the cap is
// reached, which would silently cost the last attempt.
const (
	DefaultFirstDelay = 250 * time.Millisecond
	DefaultFactor     = 2.0
	DefaultJitter     = 0.1
	DefaultSteps      = 6
	DefaultCap        = 10 * time.Second
)

// DefaultBackoff is the policy for connects and namespace lookups.
func DefaultBackoff() wait.Backoff {
	return wait.Backoff{
		Duration: DefaultFirstDelay,
		Factor:   DefaultFactor,
		Jitter:   DefaultJitter,
		Steps:    DefaultSteps,
		Cap:      DefaultCap,
	}
}

// Op is one attempt of an operation. It must give up when ctx ends.
type Op func(ctx context.Context) error

// RetryWithBackoff runs op until it succeeds, fails with an error that
// IsRetryableError does not accept, runs out of backoff.Steps attempts, or
// ctx ends. A failure comes back wrapped with the number of attempts; when
// ctx ended the retrying, the error matches both ctx.Err() and op's last
// error through errors.Is.
func RetryWithBackoff(ctx context.Context, backoff wait.Backoff, op Op) error {
	var attempts int
	var last error
	err := wait.ExponentialBackoffWithContext(ctx, backoff, func(ctx context.Context) (bool, error) {
		attempts++
		last = op(ctx)
		switch {
		case last == nil:
			return true, nil
		case IsRetryableError(last):
			return false, nil
		default:
			return false, last
		}
	})
	switch {
	case err == nil:
		return nil
	case attempts == 0:
		return fmt.Errorf("gave up before the first attempt: %w", err)
	case errors.Is(err, last):
		return fmt.Errorf("after %d attempt(s): %w", attempts, last)
	case ctx.Err() != nil:
		return fmt.Errorf("after %d attempt(s), stopped by %w: %w", attempts, ctx.Err(), last)
	default: // steps ran out
		return fmt.Errorf("after %d attempt(s): %w", attempts, last)
	}
}
