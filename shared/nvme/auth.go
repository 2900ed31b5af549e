package nvme

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"maps"
	"regexp"
	"slices"
	"strings"
)

// Secret holds a DH-HMAC-CHAP key. It prints as "(redacted)" with every fmt
// verb, so a key cannot reach a log line or an error message by accident;
// Reveal is the one way to the text, used only to build the kernel's option
// string and nvme-cli's arguments.
type Secret string

const redacted = "(redacted)"

func (Secret) String() string   { return redacted }
func (Secret) GoString() string { return redacted }

// Format applies to every verb, %q and %x included.
func (Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// Reveal returns the key itself.
func (s Secret) Reveal() string { return string(s) }

// Auth is in-band authentication (DH-HMAC-CHAP). It comes from CSI secrets,
// never from a volume context. The kernel needs CONFIG_NVME_AUTH for it.
type Auth struct {
	HostSecret Secret // dhchap_secret: proves the host to the target
	CtrlSecret Secret // dhchap_ctrl_secret: proves the target back (bidirectional)
}

// dhchapKey is the NVMe representation "DHHC-1:<hash>:<base64 key+crc>:",
// hash 00 (none), 01 (SHA-256), 02 (SHA-384), 03 (SHA-512).
var dhchapKey = regexp.MustCompile(`^DHHC-1:0[0-3]:([A-Za-z0-9+/]+={0,2}):$`)

// Validate checks the keys' form without ever putting them in the error.
func (a Auth) Validate() error {
	var errs FieldErrors
	check := func(key string, s Secret) {
		if s == "" {
			return
		}
		m := dhchapKey.FindStringSubmatch(string(s))
		if m != nil {
			// The key is 32, 48 or 64 bytes and its CRC-32, little endian; the
			// kernel checks the CRC, so a mistyped key fails here first.
			raw, err := base64.StdEncoding.DecodeString(m[1])
			if err == nil && slices.Contains([]int{36, 52, 68}, len(raw)) {
				n := len(raw) - 4
				if binary.LittleEndian.Uint32(raw[n:]) == crc32.ChecksumIEEE(raw[:n]) {
					return
				}
				errs = append(errs, &FieldError{Key: key, Secret: true, Reason: "has a CRC that does not match its key: it was mistyped or truncated"})
				return
			}
		}
		errs = append(errs, &FieldError{Key: key, Secret: true, Reason: "must be a DH-HMAC-CHAP key of the form DHHC-1:0[0-3]:<base64 of a 32, 48 or 64 byte key with its CRC>: (as `nvme gen-dhchap-key` prints)"})
	}
	check(KeyDHCHAPSecret, a.HostSecret)
	check(KeyDHCHAPCtrlSecret, a.CtrlSecret)
	if a.CtrlSecret != "" && a.HostSecret == "" {
		errs = append(errs, &FieldError{Key: KeyDHCHAPCtrlSecret, Secret: true, Reason: "needs dhchap_secret too: the kernel authenticates the target only after the host", Related: []string{KeyDHCHAPSecret}})
	}
	return errs.orNil()
}

// ParseSecrets reads DH-HMAC-CHAP keys from CSI secrets. Keys are matched
// like volume-context keys (snake_case, or camelCase); any other key, or one
// key given twice (which one won would depend on map order), is an error
// that names the key but never its value.
func ParseSecrets(m map[string]string) (Auth, error) {
	var a Auth
	var errs FieldErrors
	// Sorted, so that errors come in the same order every time.
	written := slices.Sorted(maps.Keys(m))
	seen := make(map[string]string, len(m))
	for _, k := range written {
		var key string
		var dst *Secret
		switch secretKey(k) {
		case KeyDHCHAPSecret:
			key, dst = KeyDHCHAPSecret, &a.HostSecret
		case KeyDHCHAPCtrlSecret:
			key, dst = KeyDHCHAPCtrlSecret, &a.CtrlSecret
		default:
			errs = append(errs, &FieldError{Key: k, Secret: true, Reason: "is not a known secret; known secrets: " + KeyDHCHAPSecret + ", " + KeyDHCHAPCtrlSecret})
			continue
		}
		if first, dup := seen[key]; dup {
			errs = append(errs, &FieldError{Key: key, Secret: true, Reason: fmt.Sprintf("is set twice, as %q and as %q; give it once", Truncate(first), Truncate(k))})
			continue
		}
		seen[key] = k
		*dst = Secret(m[k])
	}
	if len(errs) > 0 {
		slices.SortFunc(errs, func(x, y *FieldError) int { return strings.Compare(x.Key, y.Key) })
		return Auth{}, errs
	}
	if err := a.Validate(); err != nil {
		return Auth{}, err
	}
	return a, nil
}

// secretKey is the canonical name of a secret's key as written: the
// snake_case name itself, or its camelCase spelling (ASCII letters in any
// case, no underscores); "" for anything else.
func secretKey(k string) string {
	for _, key := range []string{KeyDHCHAPSecret, KeyDHCHAPCtrlSecret} {
		if k == key {
			return key
		}
		if low, ok := asciiLower(k); ok && !strings.Contains(k, "_") && low == strings.ReplaceAll(key, "_", "") {
			return key
		}
	}
	return ""
}
