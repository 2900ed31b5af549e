package nomadclient

import "time"

// Timings are the client's intervals and bounds; NomadTimings gives
// Nomad's own. Tests and the lab story shorten the ones that only make a
// run wait (the fingerprint interval, say), never the ones that change
// behaviour (there is no timeout on mount RPCs to shorten).
type Timings struct {
	// Supervisor (§1.1 A).
	ProbeInterval       time.Duration // 5 s: Probe while waiting for ready
	ProbeTimeout        time.Duration // 5 s per Probe
	HealthProbeInterval time.Duration // 30 s: the light loop after registration
	PluginInfoTimeout   time.Duration // 1 s for GetPluginInfo

	// CSI manager (§1.1 B).
	FingerprintInterval time.Duration // 30 s between passes
	FingerprintTimeout  time.Duration // 30 s for all the RPCs of one pass
	FinalFingerprint    time.Duration // 1 s, the pass made on shutdown
	SocketRetry         time.Duration // 5 s between stats of a missing socket
	DialTimeout         time.Duration // 1 s to connect

	// Allocations (§3.1, §3.3).
	PluginWait        time.Duration // 1 min: WaitForPlugin
	ClaimBackoff      time.Duration // 1 s, doubling
	ClaimBackoffMax   time.Duration // 1 min
	ClaimRetryFor     time.Duration // 24 h
	UnmountBackoff    time.Duration // 1 s, doubling
	UnmountBackoffMax time.Duration // 1 min
	UnmountRetryFor   time.Duration // 24 h
	DetachTimeout     time.Duration // 2 min: ClientCSI.NodeDetachVolume
}

// NomadTimings are Nomad 1.11's values.
func NomadTimings() Timings {
	return Timings{
		ProbeInterval: 5 * time.Second, ProbeTimeout: 5 * time.Second,
		HealthProbeInterval: 30 * time.Second, PluginInfoTimeout: time.Second,
		FingerprintInterval: 30 * time.Second, FingerprintTimeout: 30 * time.Second,
		FinalFingerprint: time.Second, SocketRetry: 5 * time.Second, DialTimeout: time.Second,
		PluginWait: time.Minute, ClaimBackoff: time.Second, ClaimBackoffMax: time.Minute,
		ClaimRetryFor: 24 * time.Hour, UnmountBackoff: time.Second, UnmountBackoffMax: time.Minute,
		UnmountRetryFor: 24 * time.Hour, DetachTimeout: 2 * time.Minute,
	}
}

// backoff returns the waits base, 2·base, 4·base, ... capped at max.
func backoff(base, maxWait time.Duration) func() time.Duration {
	next := base
	return func() time.Duration {
		d := next
		next = min(2*next, maxWait)
		return d
	}
}
