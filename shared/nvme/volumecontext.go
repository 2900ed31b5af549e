package nvme

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Volume is everything a volume context says: where the subsystem is, how
// the kernel should hold on to it, and which of its namespaces is meant.
type Volume struct {
	Target    Target
	Config    ConnectionConfig
	Namespace NamespaceSelector
	// FormatPolicy is "" when the context does not say (FormatIfBlank).
	FormatPolicy FormatPolicy
}

// Validate checks the whole volume; NQNs in mode.
func (v Volume) Validate(mode NQNMode) error {
	var errs FieldErrors
	for _, err := range []error{v.Target.Validate(mode), v.Config.Validate(), v.Namespace.Validate()} {
		errs = append(errs, AsFieldErrors(err)...)
	}
	if v.FormatPolicy != "" {
		_, e := parseFormatPolicy(KeyFormatPolicy, string(v.FormatPolicy))
		errs.add(e)
	}
	return errs.orNil()
}

// ExternalID names the namespace independently of the path it is reached
// by: subsystem NQN plus its strongest namespace identity. Orchestrators
// use it as the volume's ID.
func (v Volume) ExternalID() string {
	return v.Target.NQN + "/" + v.Namespace.String()
}

// ParseOption tunes ParseVolumeContext.
type ParseOption func(*parseSettings)

type parseSettings struct{ nqnMode NQNMode }

// WithNQNMode checks NQNs in mode (free-form by default).
func WithNQNMode(mode NQNMode) ParseOption {
	return func(s *parseSettings) { s.nqnMode = mode }
}

// ParseVolumeContext turns a CSI volume context (a Nomad volume's `context`)
// into a validated Volume, with this project's defaults for what is not
// given. camelCase aliases are accepted; keys holding '/' are orchestrator
// metadata and ignored; an unknown key, or one setting given twice, is an
// error. All problems are reported at once; each names the key, the value
// and what is allowed.
func ParseVolumeContext(m map[string]string, opts ...ParseOption) (Volume, error) {
	var settings parseSettings
	for _, o := range opts {
		o(&settings)
	}

	v := Volume{Target: Target{Transport: TransportTCP, TrSvcID: DefaultTrSvcID}, Config: DefaultConnectionConfig()}
	var errs FieldErrors
	seen := make(map[string]string, len(m))

	// Sorted, so that errors come in the same order every time.
	written := make([]string, 0, len(m))
	for k := range m {
		written = append(written, k)
	}
	slices.Sort(written)

	for _, k := range written {
		if strings.Contains(k, "/") {
			continue
		}
		key := canonicalKey(k)
		if key == "" {
			errs = append(errs, unknownKeyError(k, m[k]))
			continue
		}
		if first, dup := seen[key]; dup {
			errs = append(errs, &FieldError{Key: key, Value: m[k], Reason: fmt.Sprintf("is set twice, as %q and as %q; give it once", first, k)})
			continue
		}
		seen[key] = k
		if err := v.set(key, m[k]); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		// Range and cross-field checks on a half-parsed volume would only
		// repeat or confuse the syntax errors.
		return Volume{}, errs
	}
	if err := v.Validate(settings.nqnMode); err != nil {
		return Volume{}, err
	}
	return v, nil
}

func unknownKeyError(k, value string) *FieldError {
	reason := "is not a known volume context key"
	if s := suggestKey(k); s != "" {
		reason += fmt.Sprintf(" (did you mean %q?)", s)
	}
	reason += "; known keys: " + strings.Join(volumeContextKeys, ", ") + " (keys holding '/' are ignored)"
	// The value stays out of the message: an unknown key may be a secret
	// put in the wrong place.
	return &FieldError{Key: k, Value: value, Reason: reason, Secret: true}
}

// set parses one canonical key's value into v. Ranges are left to Validate.
func (v *Volume) set(key, val string) *FieldError {
	var err *FieldError
	switch key {
	case KeyTransport:
		v.Target.Transport = val
	case KeyTrAddr:
		v.Target.TrAddr = val
	case KeyTrSvcID:
		v.Target.TrSvcID = val
	case KeyNQN:
		v.Target.NQN = val
	case KeyHostTrAddr:
		v.Target.HostTrAddr = val
	case KeyHostIface:
		v.Target.HostIface = val
	case KeyNSID:
		v.Namespace.NSID, err = parseNSID(key, val)
	case KeyUUID:
		v.Namespace.UUID, err = normalizeUUID(val)
	case KeyNGUID:
		v.Namespace.NGUID, err = normalizeNGUID(val)
	case KeyCtrlLossTmo:
		v.Config.CtrlLossTmo, err = parseInt(key, val, ctrlLossTmoRange)
	case KeyReconnectDelay:
		v.Config.ReconnectDelay, err = parseInt(key, val, reconnectDelayRange)
	case KeyKeepAliveTmo:
		v.Config.KeepAliveTmo, err = parseOptionalInt(key, val, keepAliveTmoRange)
	case KeyFastIOFailTmo:
		v.Config.FastIOFailTmo, err = parseOptionalInt(key, val, fastIOFailTmoRange)
	case KeyNrIOQueues:
		v.Config.NrIOQueues, err = parseOptionalInt(key, val, nrIOQueuesRange)
	case KeyQueueSize:
		v.Config.QueueSize, err = parseOptionalInt(key, val, queueSizeRange)
	case KeyTOS:
		v.Config.TOS, err = parseOptionalInt(key, val, tosRange)
	case KeyHdrDigest:
		v.Config.HdrDigest, err = parseBool(key, val)
	case KeyDataDigest:
		v.Config.DataDigest, err = parseBool(key, val)
	case KeyFormatPolicy:
		v.FormatPolicy, err = parseFormatPolicy(key, val)
	}
	return err
}

// ToVolumeContext renders v with canonical keys. The connection target and
// the two reconnection parameters this project defaults are always written,
// so a volume keeps its behaviour should a default ever change; optional
// settings only when set; digests only when on.
func (v Volume) ToVolumeContext() map[string]string {
	m := map[string]string{
		KeyTransport:      v.Target.Transport,
		KeyTrAddr:         v.Target.TrAddr,
		KeyTrSvcID:        v.Target.TrSvcID,
		KeyNQN:            v.Target.NQN,
		KeyCtrlLossTmo:    strconv.Itoa(v.Config.CtrlLossTmo),
		KeyReconnectDelay: strconv.Itoa(v.Config.ReconnectDelay),
	}
	putString := func(k, s string) {
		if s != "" {
			m[k] = s
		}
	}
	putInt := func(k string, p *int) {
		if p != nil {
			m[k] = strconv.Itoa(*p)
		}
	}
	putString(KeyHostTrAddr, v.Target.HostTrAddr)
	putString(KeyHostIface, v.Target.HostIface)
	if v.Namespace.NSID != 0 {
		m[KeyNSID] = strconv.FormatUint(uint64(v.Namespace.NSID), 10)
	}
	putString(KeyUUID, v.Namespace.UUID)
	putString(KeyNGUID, v.Namespace.NGUID)
	putInt(KeyKeepAliveTmo, v.Config.KeepAliveTmo)
	putInt(KeyFastIOFailTmo, v.Config.FastIOFailTmo)
	putInt(KeyNrIOQueues, v.Config.NrIOQueues)
	putInt(KeyQueueSize, v.Config.QueueSize)
	putInt(KeyTOS, v.Config.TOS)
	if v.Config.HdrDigest {
		m[KeyHdrDigest] = "true"
	}
	if v.Config.DataDigest {
		m[KeyDataDigest] = "true"
	}
	putString(KeyFormatPolicy, string(v.FormatPolicy))
	return m
}

// parseInt accepts plain decimal only. The kernel parses its integers with
// base 0, so "010" would mean 8 there; refusing leading zeros, signs other
// than '-', and spaces keeps what the user wrote and what the kernel reads
// the same number.
func parseInt(key, s, allowed string) (int, *FieldError) {
	digits := strings.TrimPrefix(s, "-")
	if digits == "" || (len(digits) > 1 && digits[0] == '0') || strings.Trim(digits, "0123456789") != "" {
		return 0, &FieldError{Key: key, Value: s, Reason: "must be a decimal integer; " + allowed}
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0, &FieldError{Key: key, Value: s, Reason: "is out of range; " + allowed}
	}
	return int(n), nil
}

func parseOptionalInt(key, s, allowed string) (*int, *FieldError) {
	n, err := parseInt(key, s, allowed)
	if err != nil {
		return nil, err
	}
	return &n, nil
}

func parseNSID(key, s string) (uint32, *FieldError) {
	if s == "" || (len(s) > 1 && s[0] == '0') || strings.Trim(s, "0123456789") != "" {
		return 0, &FieldError{Key: key, Value: s, Reason: "must be a decimal integer; " + nsidRange}
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n > MaxNSID {
		return 0, &FieldError{Key: key, Value: s, Reason: "is out of range; " + nsidRange}
	}
	if n == 0 {
		return 0, &FieldError{Key: key, Value: s, Reason: nsidRange}
	}
	return uint32(n), nil
}

func parseBool(key, s string) (bool, *FieldError) {
	switch strings.ToLower(s) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, &FieldError{Key: key, Value: s, Reason: `must be "true" or "false"`}
}
