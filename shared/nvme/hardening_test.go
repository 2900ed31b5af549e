package nvme

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// Aliases fold ASCII letters only: Unicode case folding would take the
// Kelvin sign (U+212A) for 'k' and the dotted capital I (U+0130) for 'i'.
func TestAliasesAreASCIIOnly(t *testing.T) {
	for _, key := range []string{
		"\u212AeepAliveTmo",    // Kelvin sign for k
		"nrIoQueues\u0130",     // not a key at all
		"n\u0130oQueues",       // dotted capital I for i... of nrIoQueues
		"ctrlLossTmo\u212A",    // trailing Kelvin sign
		"hdr\u0130gest",        // nonsense with a non-ASCII letter
		"reconnectDelay\u00a0", // no-break space
	} {
		m := minimal()
		m[key] = "5"
		_, err := ParseVolumeContext(m)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "is not a known volume context key") {
			t.Errorf("key %q: error = %v, want it refused as unknown", key, err)
		}
	}
	m := minimal()
	m["KEEPALIVETMO"] = "7"
	v, err := ParseVolumeContext(m)
	if err != nil || v.Config.KeepAliveTmo == nil || *v.Config.KeepAliveTmo != 7 {
		t.Errorf("ASCII capitals still fold: %+v, %v", v.Config, err)
	}
	if _, err := ParseSecrets(map[string]string{"dhchap_\u212Aey": "x"}); err == nil {
		t.Error("a secret key with a Kelvin sign was accepted")
	}
}

// What errors echo is capped: a 4 MiB key or value costs no noticeable CPU
// and no 4 MiB log line.
func TestErrorsCapWhatTheyEcho(t *testing.T) {
	huge := strings.Repeat("k", 4<<20)
	m := minimal()
	m[huge] = "1"
	m["nqn"] = strings.Repeat("n", 4<<20)
	start := time.Now()
	_, err := ParseVolumeContext(m)
	took := time.Since(start)
	if err == nil {
		t.Fatal("accepted")
	}
	if len(err.Error()) > 4*MaxEcho+2048 {
		t.Errorf("error is %d bytes long; it should echo at most %d bytes of each input", len(err.Error()), MaxEcho)
	}
	if !strings.Contains(err.Error(), "(4194304 bytes)") {
		t.Errorf("error does not say how long the input was: %.300s", err)
	}
	t.Logf("parse of a 4 MiB key and a 4 MiB NQN: %v", took)
}

func TestTruncate(t *testing.T) {
	if got := Truncate("short"); got != "short" {
		t.Errorf("Truncate(short) = %q", got)
	}
	long := strings.Repeat("é", MaxEcho) // 2 bytes each: the cut falls inside a rune
	got := Truncate(long)
	if !strings.HasSuffix(got, "...(512 bytes)") || !strings.HasPrefix(got, "é") {
		t.Errorf("Truncate = %q", got)
	}
	if strings.ContainsRune(strings.TrimSuffix(got, "...(512 bytes)"), '\uFFFD') {
		t.Errorf("Truncate cut a rune in two: %q", got)
	}
}

func TestFormatPolicy(t *testing.T) {
	for _, p := range []string{"if-blank", "if-no-filesystem", "never"} {
		m := minimal()
		m["format_policy"] = p
		v, err := ParseVolumeContext(m)
		if err != nil || string(v.FormatPolicy) != p {
			t.Errorf("%s: %q, %v", p, v.FormatPolicy, err)
		}
		if got := v.ToVolumeContext()["format_policy"]; got != p {
			t.Errorf("%s does not round-trip: %q", p, got)
		}
	}
	m := minimal()
	m["formatPolicy"] = "always"
	_, err := ParseVolumeContext(m)
	want := `invalid format_policy "always": must be one of "if-blank", "if-no-filesystem", "never" (default "if-blank")`
	if err == nil || err.Error() != want {
		t.Errorf("error = %v\nwant %s", err, want)
	}
	v, err := ParseVolumeContext(minimal())
	if err != nil || v.FormatPolicy != "" || v.FormatPolicy.OrDefault() != FormatIfBlank {
		t.Errorf("default: %q, %v", v.FormatPolicy, err)
	}
	if _, ok := v.ToVolumeContext()["format_policy"]; ok {
		t.Error("an unset policy is written out")
	}
	bad := v
	bad.FormatPolicy = "sometimes"
	if err := bad.Validate(NQNFreeForm); !errors.Is(err, ErrInvalid) {
		t.Errorf("Validate of a bad policy = %v", err)
	}
}

// nvme-cli takes its arguments from an argv: a value starting with '-'
// must never be read as an option of its own.
func TestBuildConnectArgsRefusesLeadingDash(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Connection)
		key  string
	}{
		{"nqn", func(c *Connection) { c.Target.NQN = "-nqn" }, KeyNQN},
		{"host nqn", func(c *Connection) { c.Host.NQN = "--help" }, KeyHostNQN},
		{"host iface", func(c *Connection) { c.Target.HostIface = "-eth0" }, KeyHostIface},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testConnection()
			tt.edit(&c)
			if _, err := c.FabricsOptions(); err != nil {
				t.Fatalf("the kernel's option string takes it: %v", err)
			}
			_, err := c.BuildConnectArgs()
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Key != tt.key || !strings.Contains(err.Error(), "must not start with '-'") {
				t.Errorf("error = %v, want one on %s", err, tt.key)
			}
		})
	}
	// Negative numbers are rendered by us and stay.
	c := testConnection()
	c.Config.FastIOFailTmo = new(-1)
	args, err := c.BuildConnectArgs()
	if err != nil || !strings.Contains(strings.Join(args, " "), "-l -1") {
		t.Errorf("args %q, %v", args, err)
	}
}

func TestValidConnection(t *testing.T) {
	c := testConnection()
	c.Target.NQN += ",ctrl_loss_tmo=0"
	if _, err := c.Valid(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Valid = %v, want ErrInvalid", err)
	}
	v, err := testConnection().Valid()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := testConnection().FabricsOptions()
	if v.FabricsOptions() != want || v.Connection() != testConnection() {
		t.Errorf("ValidConnection renders %q, want %q", v.FabricsOptions(), want)
	}
}

// A ValidConnection that never passed Valid says so.
func TestZeroValidConnectionIsUnchecked(t *testing.T) {
	var v ValidConnection
	if v.Checked() || !errors.Is(v.Check(), ErrInvalid) {
		t.Errorf("zero ValidConnection: checked %v, Check %v", v.Checked(), v.Check())
	}
}
