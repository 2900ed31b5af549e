package nvme

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

// HostNQNUUIDPrefix starts a host NQN of the uuid form; the host ID of
// such an NQN is the uuid after it, as libnvme derives it.
const HostNQNUUIDPrefix = "nqn.2014-08.org.nvmexpress:uuid:"

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
