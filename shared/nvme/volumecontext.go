package nvme

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Volume is everything a volume context says: where the subsystem is and
// by which portals, how the kernel should hold on to it, and which of its
// namespaces is meant.
type Volume struct {
	// Target is the subsystem (NQN, transport) and its first portal.
	Target Target
	// MorePortals are the subsystem's further portals, 2 to MaxPortals, in
	// the order the context numbers them: one more path each.
	MorePortals []Portal
	Config      ConnectionConfig
	Namespace   NamespaceSelector
	// FormatPolicy is "" when the context does not say (FormatIfBlank).
	FormatPolicy FormatPolicy
	// IOPolicy is the subsystem's multipath I/O policy; "" leaves the
	// kernel's.
	IOPolicy IOPolicy
}

// Portals lists every portal, the first one first.
func (v Volume) Portals() []Portal {
	return append([]Portal{v.Target.Portal()}, v.MorePortals...)
}

// Targets is one Target per path: the subsystem reached through each
// portal, in order. Each is what one controller is connected to.
func (v Volume) Targets() []Target {
	out := make([]Target, 0, 1+len(v.MorePortals))
	for _, p := range v.Portals() {
		out = append(out, v.Target.WithPortal(p))
	}
	return out
}

// Validate checks the whole volume; NQNs in mode. Every portal is checked
// on its own, so that each path's option string is built from one
// validated portal.
func (v Volume) Validate(mode NQNMode) error {
	var errs FieldErrors
	for _, err := range []error{v.Target.Validate(mode), v.Config.Validate(), v.Namespace.Validate()} {
		errs = append(errs, AsFieldErrors(err)...)
	}
	errs = append(errs, v.validateMorePortals()...)
	if v.FormatPolicy != "" {
		_, e := parseFormatPolicy(KeyFormatPolicy, string(v.FormatPolicy))
		errs.add(e)
	}
	if v.IOPolicy != "" {
		_, e := parseIOPolicy(KeyIOPolicy, string(v.IOPolicy))
		errs.add(e)
	}
	return errs.orNil()
}

// validateMorePortals checks portals 2..N and that no portal repeats
// another: the kernel refuses the second connect of a path as a duplicate,
// and the volume would have one path fewer than it says.
func (v Volume) validateMorePortals() FieldErrors {
	var errs FieldErrors
	if 1+len(v.MorePortals) > MaxPortals {
		errs = append(errs, &FieldError{Key: PortalKey(KeyTrAddr, MaxPortals+1), Value: fmt.Sprint(1 + len(v.MorePortals)),
			Reason: fmt.Sprintf("a volume has at most %d portals", MaxPortals)})
		return errs
	}
	all := v.Portals()
	for i, p := range v.MorePortals {
		n := i + 2
		errs = append(errs, validatePortal(p, n)...)
		for j := range n - 1 {
			if samePortal(all[j], p) {
				errs = append(errs, &FieldError{Key: PortalKey(KeyTrAddr, n), Value: p.TrAddr,
					Reason:  fmt.Sprintf("portal %d (%s) is portal %d again; give each path once", n, p, j+1),
					Related: []string{PortalKey(KeyTrAddr, j+1)}})
				break
			}
		}
	}
	return errs
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
	more := map[int]*Portal{} // portals 2..MaxPortals, as written

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
		key, n, problem := canonicalKey(k)
		switch {
		case problem != "":
			errs = append(errs, &FieldError{Key: k, Value: m[k], Reason: problem})
			continue
		case key == "":
			errs = append(errs, unknownKeyError(k, m[k]))
			continue
		}
		full := PortalKey(key, n)
		if first, dup := seen[full]; dup {
			errs = append(errs, &FieldError{Key: full, Value: m[k], Reason: fmt.Sprintf("is set twice, as %q and as %q; give it once", first, k)})
			continue
		}
		seen[full] = k
		if n > 1 {
			if more[n] == nil {
				more[n] = &Portal{TrSvcID: DefaultTrSvcID}
			}
			setPortal(more[n], key, m[k])
			continue
		}
		if err := v.set(key, m[k]); err != nil {
			errs = append(errs, err)
		}
	}
	var perr FieldErrors
	v.MorePortals, perr = collectPortals(more, seen)
	errs = append(errs, perr...)
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

// collectPortals orders portals 2..N. A portal needs its traddr, and the
// numbers run without gaps: a missing "traddr_2" beside a "traddr_3" is a
// typo or a deleted line, and guessing which would connect a path the user
// did not mean.
func collectPortals(more map[int]*Portal, seen map[string]string) ([]Portal, FieldErrors) {
	if len(more) == 0 {
		return nil, nil
	}
	var errs FieldErrors
	last := 0
	for n := range more {
		last = max(last, n)
	}
	out := make([]Portal, 0, last-1)
	for n := 2; n <= last; n++ {
		p, ok := more[n]
		switch {
		case !ok:
			errs = append(errs, &FieldError{Key: PortalKey(KeyTrAddr, n),
				Reason: fmt.Sprintf("is missing, but portal %d is given; number the portals 2, 3, ... without gaps", last)})
			continue
		case p.TrAddr == "":
			var given []string
			for _, k := range portalKeys {
				if _, ok := seen[PortalKey(k, n)]; ok {
					given = append(given, PortalKey(k, n))
				}
			}
			errs = append(errs, &FieldError{Key: PortalKey(KeyTrAddr, n), Related: given,
				Reason: fmt.Sprintf("is required: %s name portal %d, which needs an address", strings.Join(given, ", "), n)})
			continue
		}
		out = append(out, *p)
	}
	return out, errs
}

// setPortal stores one field of a further portal; Validate checks it.
func setPortal(p *Portal, key, val string) {
	switch key {
	case KeyTrAddr:
		p.TrAddr = val
	case KeyTrSvcID:
		p.TrSvcID = val
	case KeyHostTrAddr:
		p.HostTrAddr = val
	case KeyHostIface:
		p.HostIface = val
	}
}

func unknownKeyError(k, value string) *FieldError {
	reason := "is not a known volume context key"
	if s := suggestKey(k); s != "" {
		reason += fmt.Sprintf(" (did you mean %q?)", s)
	}
	reason += "; known keys: " + strings.Join(volumeContextKeys, ", ") +
		fmt.Sprintf(" (%s take the suffix _2 to _%d for further portals; keys holding '/' are ignored)", strings.Join(portalKeys, ", "), MaxPortals)
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
	case KeyIOPolicy:
		v.IOPolicy, err = parseIOPolicy(key, val)
	}
	return err
}

// ToVolumeContext renders v with canonical keys. The connection target,
// every portal's address and port, and the two reconnection parameters
// this project defaults are always written,
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
	for i, p := range v.MorePortals {
		n := i + 2
		m[PortalKey(KeyTrAddr, n)] = p.TrAddr
		m[PortalKey(KeyTrSvcID, n)] = p.TrSvcID
		putString(PortalKey(KeyHostTrAddr, n), p.HostTrAddr)
		putString(PortalKey(KeyHostIface, n), p.HostIface)
	}
	putString(KeyFormatPolicy, string(v.FormatPolicy))
	putString(KeyIOPolicy, string(v.IOPolicy))
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
