package nvme

import (
	"fmt"
	"math"
)

// Defaults this project chooses over the kernel's (see DESIGN.md).
const (
	// DefaultCtrlLossTmo reconnects forever. After ctrl_loss_tmo the kernel
	// deletes the controller, I/O fails with EIO and ext4/xfs turn
	// read-only; a network blip must never do that to a mounted volume.
	DefaultCtrlLossTmo = -1
	// DefaultReconnectDelay halves the kernel's 10 s: quicker recovery for
	// a modest load on the target.
	DefaultReconnectDelay = 5
)

// Ranges of the reconnection parameters, shared by validation, error text
// and the provider's schema.
const (
	MinQueueSize    = 16
	MaxQueueSize    = 1024
	MaxTOS          = 255
	MaxNrIOQueues   = 65535
	MaxKeepAliveTmo = 65535
	maxSeconds      = math.MaxInt32
)

// ConnectionConfig holds the kernel's per-controller connection parameters.
// A nil pointer leaves the kernel's default in force and is not sent.
type ConnectionConfig struct {
	CtrlLossTmo    int  // seconds; -1 reconnects forever, 0 gives up at the first error
	ReconnectDelay int  // seconds between reconnect attempts, > 0
	KeepAliveTmo   *int // seconds; fixed for the controller's life once connected
	FastIOFailTmo  *int // seconds after which I/O fails while reconnecting goes on; -1 = off
	NrIOQueues     *int
	QueueSize      *int
	TOS            *int
	HdrDigest      bool
	DataDigest     bool
}

// DefaultConnectionConfig is ctrl_loss_tmo=-1, reconnect_delay=5, and the
// kernel's defaults for everything else.
func DefaultConnectionConfig() ConnectionConfig {
	return ConnectionConfig{CtrlLossTmo: DefaultCtrlLossTmo, ReconnectDelay: DefaultReconnectDelay}
}

// Validate applies the kernel's ranges and the cross-field traps the kernel
// accepts silently but that never do what the user meant.
func (c ConnectionConfig) Validate() error {
	var errs FieldErrors
	add := func(key string, v int, reason string, related ...string) {
		errs = append(errs, &FieldError{Key: key, Value: fmt.Sprint(v), Reason: reason, Related: related})
	}
	if c.CtrlLossTmo < -1 {
		add(KeyCtrlLossTmo, c.CtrlLossTmo, ctrlLossTmoRange)
	}
	if c.ReconnectDelay < 1 {
		add(KeyReconnectDelay, c.ReconnectDelay, reconnectDelayRange)
	}
	if c.CtrlLossTmo > 0 && c.ReconnectDelay > 0 && c.CtrlLossTmo < c.ReconnectDelay {
		add(KeyCtrlLossTmo, c.CtrlLossTmo, fmt.Sprintf(
			"is shorter than reconnect_delay %d, which gives a single reconnect attempt; use ctrl_loss_tmo -1 (forever), 0, or at least reconnect_delay",
			c.ReconnectDelay), KeyReconnectDelay)
	}
	if c.KeepAliveTmo != nil && (*c.KeepAliveTmo < 1 || *c.KeepAliveTmo > MaxKeepAliveTmo) {
		add(KeyKeepAliveTmo, *c.KeepAliveTmo, keepAliveTmoRange)
	}
	if c.FastIOFailTmo != nil {
		switch f := *c.FastIOFailTmo; {
		case f < -1:
			add(KeyFastIOFailTmo, f, fastIOFailTmoRange)
		case f >= 0 && c.CtrlLossTmo > 0 && f > c.CtrlLossTmo:
			add(KeyFastIOFailTmo, f, fmt.Sprintf(
				"is longer than ctrl_loss_tmo %d, so it never takes effect: the controller is deleted first; use a value up to ctrl_loss_tmo, or ctrl_loss_tmo -1",
				c.CtrlLossTmo), KeyCtrlLossTmo)
		}
	}
	if c.NrIOQueues != nil && (*c.NrIOQueues < 1 || *c.NrIOQueues > MaxNrIOQueues) {
		add(KeyNrIOQueues, *c.NrIOQueues, nrIOQueuesRange)
	}
	if c.QueueSize != nil && (*c.QueueSize < MinQueueSize || *c.QueueSize > MaxQueueSize) {
		add(KeyQueueSize, *c.QueueSize, queueSizeRange)
	}
	if c.TOS != nil && (*c.TOS < 0 || *c.TOS > MaxTOS) {
		add(KeyTOS, *c.TOS, tosRange)
	}
	return errs.orNil()
}

// The allowed ranges, worded once for every error that names them.
var (
	ctrlLossTmoRange    = fmt.Sprintf("must be -1 (reconnect forever), 0 (give up at the first error) or a number of seconds up to %d", maxSeconds)
	reconnectDelayRange = fmt.Sprintf("must be a number of seconds from 1 to %d", maxSeconds)
	keepAliveTmoRange   = fmt.Sprintf("must be a number of seconds from 1 to %d", MaxKeepAliveTmo)
	fastIOFailTmoRange  = fmt.Sprintf("must be -1 (off) or a number of seconds from 0 to %d", maxSeconds)
	nrIOQueuesRange     = fmt.Sprintf("must be a number of queues from 1 to %d (the kernel caps it at the CPU count)", MaxNrIOQueues)
	queueSizeRange      = fmt.Sprintf("must be a queue depth from %d to %d", MinQueueSize, MaxQueueSize)
	tosRange            = fmt.Sprintf("must be an IP type-of-service value from 0 to %d", MaxTOS)
)

// Diff lists the settings in which c and o differ, each as
// "key c-value -> o-value" with "kernel default" for a setting left unset.
// Nil when they are the same.
func (c ConnectionConfig) Diff(o ConnectionConfig) []string {
	mine := Volume{Config: c}.ToVolumeContext()
	theirs := Volume{Config: o}.ToVolumeContext()
	var out []string
	for _, k := range connectionConfigKeys {
		a, aok := mine[k]
		b, bok := theirs[k]
		if a == b && aok == bok {
			continue
		}
		if !aok {
			a = "kernel default"
		}
		if !bok {
			b = "kernel default"
		}
		out = append(out, fmt.Sprintf("%s %s -> %s", k, a, b))
	}
	return out
}

// connectionConfigKeys are the volume-context keys of ConnectionConfig.
var connectionConfigKeys = []string{
	KeyCtrlLossTmo, KeyReconnectDelay, KeyKeepAliveTmo, KeyFastIOFailTmo,
	KeyNrIOQueues, KeyQueueSize, KeyHdrDigest, KeyDataDigest, KeyTOS,
}
