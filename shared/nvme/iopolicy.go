package nvme

import (
	"fmt"
	"slices"
	"strings"
)

// IOPolicy is how native multipath spreads a namespace's I/O over its
// live paths. The kernel keeps one per subsystem, shared by every
// namespace of it on the host.
type IOPolicy string

// The policies Linux has had; which of them the running kernel offers is
// for the plugin to learn there (queue-depth came with Linux 6.11).
const (
	// IOPolicyNUMA sends I/O down the path closest to the submitting
	// CPU's NUMA node: one path per node at a time. The kernel's default.
	IOPolicyNUMA IOPolicy = "numa"
	// IOPolicyRoundRobin alternates between the optimized paths.
	IOPolicyRoundRobin IOPolicy = "round-robin"
	// IOPolicyQueueDepth picks the optimized path with the fewest
	// requests in flight.
	IOPolicyQueueDepth IOPolicy = "queue-depth"
)

// IOPolicies lists every policy a volume context may name.
func IOPolicies() []IOPolicy {
	return []IOPolicy{IOPolicyNUMA, IOPolicyRoundRobin, IOPolicyQueueDepth}
}

var ioPolicyAllowed = func() string {
	names := make([]string, 0, 3)
	for _, p := range IOPolicies() {
		names = append(names, fmt.Sprintf("%q", p))
	}
	return "must be one of " + strings.Join(names, ", ") +
		" (unset leaves the kernel's, normally numa; queue-depth needs a kernel that offers it, Linux 6.11 or later)"
}()

func parseIOPolicy(key, s string) (IOPolicy, *FieldError) {
	if !slices.Contains(IOPolicies(), IOPolicy(s)) {
		return "", &FieldError{Key: key, Value: s, Reason: ioPolicyAllowed}
	}
	return IOPolicy(s), nil
}
