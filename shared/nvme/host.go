package nvme

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// DefaultHostConfigDir holds hostnqn and hostid on hosts set up by nvme-cli.
const DefaultHostConfigDir = "/etc/nvme"

// Host is the initiator's identity. Always pass both halves: without them
// the kernel invents a random pair per boot, and a target that saw this
// hostnqn with another hostid refuses the connection.
type Host struct {
	NQN string // host NQN
	ID  string // host ID, a UUID
}

// isUUID reports whether s is a UUID in the 8-4-4-4-12 layout. Written
// out rather than a regexp: it runs on every volume context and connect.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if (c < '0' || c > '9') && (c < 'a' || c > 'f') && (c < 'A' || c > 'F') {
				return false
			}
		}
	}
	return true
}

const hostNQNUUIDPrefix = "nqn.2014-08.org.nvmexpress:uuid:"

// Validate checks both halves. The host NQN may be free-form: plenty of
// fleets name hosts by role. The host ID must be a UUID (the kernel parses
// it as one).
func (h Host) Validate() error {
	var errs FieldErrors
	errs.add(checkNQN(KeyHostNQN, h.NQN, NQNFreeForm))
	if !isUUID(h.ID) {
		errs = append(errs, &FieldError{Key: KeyHostID, Value: h.ID, Reason: "must be a UUID (8-4-4-4-12 hexadecimal digits)"})
	}
	return errs.orNil()
}

// LoadHost reads hostnqn and hostid from dir (usually /etc/nvme); non-empty
// fields of override win over the files. When no host ID is found but the
// host NQN is of the uuid form, the ID is taken from it, as libnvme does.
// The result is validated.
func LoadHost(dir string, override Host) (Host, error) {
	h := override
	var err error
	if h.NQN == "" {
		if h.NQN, err = readIdentityFile(filepath.Join(dir, "hostnqn")); err != nil {
			return Host{}, err
		}
	}
	if h.ID == "" {
		if h.ID, err = readIdentityFile(filepath.Join(dir, "hostid")); err != nil {
			return Host{}, err
		}
	}
	if h.ID == "" && strings.HasPrefix(h.NQN, hostNQNUUIDPrefix) {
		h.ID = strings.TrimPrefix(h.NQN, hostNQNUUIDPrefix)
	}
	if h.NQN == "" {
		return Host{}, fmt.Errorf("no host NQN: %s is missing and none was given: %w", filepath.Join(dir, "hostnqn"),
			&FieldError{Key: KeyHostNQN, Reason: "is required (write one with `nvme gen-hostnqn`, or pass it explicitly)"})
	}
	if h.ID == "" {
		return Host{}, fmt.Errorf("no host ID: %s is missing and the host NQN holds no uuid: %w", filepath.Join(dir, "hostid"),
			&FieldError{Key: KeyHostID, Reason: "is required (write one with `uuidgen`, or pass it explicitly)"})
	}
	h.ID = strings.ToLower(h.ID)
	if err := h.Validate(); err != nil {
		return Host{}, err
	}
	return h, nil
}

// readIdentityFile returns the trimmed content of path, or "" when it does
// not exist.
func readIdentityFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read host identity: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}
