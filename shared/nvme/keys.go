package nvme

import (
	"slices"
	"strings"
)

// Volume-context keys: snake_case, mirroring the kernel's option names.
const (
	KeyTransport      = "transport"
	KeyTrAddr         = "traddr"
	KeyTrSvcID        = "trsvcid"
	KeyNQN            = "nqn"
	KeyHostTrAddr     = "host_traddr"
	KeyHostIface      = "host_iface"
	KeyNSID           = "nsid"
	KeyUUID           = "uuid"
	KeyNGUID          = "nguid"
	KeyCtrlLossTmo    = "ctrl_loss_tmo"
	KeyReconnectDelay = "reconnect_delay"
	KeyKeepAliveTmo   = "keep_alive_tmo"
	KeyFastIOFailTmo  = "fast_io_fail_tmo"
	KeyNrIOQueues     = "nr_io_queues"
	KeyQueueSize      = "queue_size"
	KeyHdrDigest      = "hdr_digest"
	KeyDataDigest     = "data_digest"
	KeyTOS            = "tos"
	KeyFormatPolicy   = "format_policy"
)

// Keys of the host identity and of CSI secrets; they never appear in a
// volume context but name fields in errors.
const (
	KeyHostNQN          = "hostnqn"
	KeyHostID           = "hostid"
	KeyDHCHAPSecret     = "dhchap_secret"      //nolint:gosec // the name of a setting, not a credential
	KeyDHCHAPCtrlSecret = "dhchap_ctrl_secret" //nolint:gosec // the name of a setting, not a credential
)

// volumeContextKeys is every key ParseVolumeContext knows, in the order
// error messages and documentation list them.
var volumeContextKeys = []string{
	KeyTransport, KeyTrAddr, KeyTrSvcID, KeyNQN, KeyHostTrAddr, KeyHostIface,
	KeyNSID, KeyUUID, KeyNGUID,
	KeyCtrlLossTmo, KeyReconnectDelay, KeyKeepAliveTmo, KeyFastIOFailTmo,
	KeyNrIOQueues, KeyQueueSize, KeyHdrDigest, KeyDataDigest, KeyTOS,
	KeyFormatPolicy,
}

// VolumeContextKeys returns the canonical keys in documentation order.
func VolumeContextKeys() []string { return slices.Clone(volumeContextKeys) }

// squashed maps a canonical key without underscores to the key, so that the
// camelCase spellings of the seed design (ctrlLossTmo, fastIOFailTmo, ...)
// find their canonical key whatever their capitals.
var squashed = func() map[string]string {
	m := make(map[string]string, len(volumeContextKeys))
	for _, k := range volumeContextKeys {
		m[strings.ReplaceAll(k, "_", "")] = k
	}
	return m
}()

// canonicalKey returns the canonical key for a key as written, or "" when it
// is unknown. Canonical keys match exactly; aliases are camelCase, i.e.
// without underscores, compared without regard to ASCII case. Only ASCII
// letters fold: Unicode's case folding would let the Kelvin sign stand for
// 'k' and a dotted capital I for 'i'.
func canonicalKey(k string) string {
	if slices.Contains(volumeContextKeys, k) {
		return k
	}
	if strings.Contains(k, "_") {
		return ""
	}
	low, ok := asciiLower(k)
	if !ok {
		return ""
	}
	return squashed[low]
}

// asciiLower lowers ASCII letters; false when s holds anything but ASCII.
func asciiLower(s string) (string, bool) {
	b := make([]byte, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 0x80:
			return "", false
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		}
		b[i] = c
	}
	return string(b), true
}

// maxSuggestLen bounds the keys a "did you mean" is worked out for: the
// edit distance costs the product of the lengths, and no key of ours is
// near this long.
const maxSuggestLen = 64

// suggestKey returns the known key closest to an unknown one, when it is
// close enough to be a typo.
func suggestKey(k string) string {
	best, bestDist := "", 3 // at most two edits away
	low, ok := asciiLower(k)
	if !ok || len(k) > maxSuggestLen {
		return ""
	}
	for _, known := range volumeContextKeys {
		if d := editDistance(low, known); d < bestDist {
			best, bestDist = known, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
