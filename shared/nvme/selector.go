package nvme

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// MaxNSID is the largest valid namespace ID; 0xFFFFFFFF means "all".
const MaxNSID = 0xFFFFFFFE

// NamespaceSelector picks one namespace of a subsystem. NSID finds it; UUID
// and NGUID, when given, prove it is the right one, so a target that
// renumbered its namespaces can never hand over someone else's data. When
// only UUID or NGUID is given, the namespace is found by that identity.
type NamespaceSelector struct {
	NSID  uint32 // 0 = not given
	UUID  string // canonical: lower-case 8-4-4-4-12
	NGUID string // canonical: 32 lower-case hexadecimal digits
}

// Validate requires at least one way to identify the namespace and checks
// the form of each.
func (s NamespaceSelector) Validate() error {
	var errs FieldErrors
	if s.NSID == 0 && s.UUID == "" && s.NGUID == "" {
		errs = append(errs, &FieldError{Key: KeyNSID, Reason: "one of nsid, uuid or nguid is required to pick the namespace", Related: []string{KeyUUID, KeyNGUID}})
	}
	if s.NSID > MaxNSID {
		errs = append(errs, &FieldError{Key: KeyNSID, Value: fmt.Sprint(s.NSID), Reason: nsidRange})
	}
	if s.UUID != "" {
		_, e := normalizeUUID(s.UUID)
		errs.add(e)
	}
	if s.NGUID != "" {
		_, e := normalizeNGUID(s.NGUID)
		errs.add(e)
	}
	return errs.orNil()
}

// String names the namespace by its strongest identity: uuid, nguid, nsid.
func (s NamespaceSelector) String() string {
	switch {
	case s.UUID != "":
		return "uuid:" + s.UUID
	case s.NGUID != "":
		return "nguid:" + s.NGUID
	default:
		return fmt.Sprintf("nsid:%d", s.NSID)
	}
}

var nsidRange = fmt.Sprintf("must be a namespace ID from 1 to %d", MaxNSID)

// NormalizeUUID returns the canonical lower-case form of a namespace UUID.
func NormalizeUUID(s string) (string, error) {
	u, e := normalizeUUID(s)
	if e != nil {
		return "", e
	}
	return u, nil
}

func normalizeUUID(s string) (string, *FieldError) {
	if !isUUID(s) {
		return "", &FieldError{Key: KeyUUID, Value: s, Reason: "must be a UUID (8-4-4-4-12 hexadecimal digits)"}
	}
	return strings.ToLower(s), nil
}

// NormalizeNGUID returns the canonical form of a namespace NGUID: 32
// lower-case hexadecimal digits. Dashes are accepted and dropped, because
// sysfs prints NGUIDs in the UUID layout.
func NormalizeNGUID(s string) (string, error) {
	n, e := normalizeNGUID(s)
	if e != nil {
		return "", e
	}
	return n, nil
}

func normalizeNGUID(s string) (string, *FieldError) {
	bare := strings.ToLower(strings.ReplaceAll(s, "-", ""))
	if len(bare) != 32 {
		return "", &FieldError{Key: KeyNGUID, Value: s, Reason: "must be 32 hexadecimal digits (dashes allowed)"}
	}
	if _, err := hex.DecodeString(bare); err != nil {
		return "", &FieldError{Key: KeyNGUID, Value: s, Reason: "must be 32 hexadecimal digits (dashes allowed)"}
	}
	return bare, nil
}
