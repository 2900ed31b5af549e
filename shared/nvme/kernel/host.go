package kernel

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

// Where nvme-cli keeps the host identity.
const (
	DefaultHostNQNFile = "/etc/nvme/hostnqn"
	DefaultHostIDFile  = "/etc/nvme/hostid"
)

// HostSources says where the host identity comes from. A value given
// wins over its file. A file named explicitly (Required) must exist; a
// default one may be missing, and then the host ID is derived from a host
// NQN of the uuid form, as libnvme does.
type HostSources struct {
	NQN, ID                         string
	NQNFile, IDFile                 string
	NQNFileRequired, IDFileRequired bool
}

// LoadHost reads the host identity from src and validates it. derived
// reports that the host ID was derived from the host NQN.
func LoadHost(src HostSources) (host nvme.Host, derived bool, err error) {
	host = nvme.Host{NQN: src.NQN, ID: src.ID}
	if host.NQN == "" {
		if host.NQN, err = readIdentityFile(src.NQNFile, src.NQNFileRequired); err != nil {
			return nvme.Host{}, false, err
		}
	}
	if host.ID == "" {
		if host.ID, err = readIdentityFile(src.IDFile, src.IDFileRequired); err != nil {
			return nvme.Host{}, false, err
		}
		if host.ID == "" && strings.HasPrefix(host.NQN, nvme.HostNQNUUIDPrefix) {
			host.ID, derived = strings.TrimPrefix(host.NQN, nvme.HostNQNUUIDPrefix), true
		}
	}
	if host.NQN == "" {
		return nvme.Host{}, false, fmt.Errorf("no host NQN: %s is missing and none was given: %w", src.NQNFile,
			&nvme.FieldError{Key: nvme.KeyHostNQN, Reason: "is required (write one with `nvme gen-hostnqn`, or pass it explicitly)"})
	}
	if host.ID == "" {
		return nvme.Host{}, false, fmt.Errorf("no host ID: %s is missing and the host NQN holds no uuid: %w", src.IDFile,
			&nvme.FieldError{Key: nvme.KeyHostID, Reason: "is required (write one with `uuidgen`, or pass it explicitly)"})
	}
	host.ID = strings.ToLower(host.ID)
	if err := host.Validate(); err != nil {
		return nvme.Host{}, false, err
	}
	return host, derived, nil
}

// readIdentityFile returns the trimmed content of path; "" when it does
// not exist and is not required.
func readIdentityFile(path string, required bool) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !required {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read host identity: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}
