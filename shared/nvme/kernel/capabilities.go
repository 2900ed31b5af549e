package kernel

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
)

// Support says whether the kernel has a feature.
type Support int

// What a capability check can learn.
const (
	Unknown Support = iota // nothing readable said
	Supported
	Missing
)

func (s Support) String() string {
	return [...]string{"unknown", "yes", "no"}[s]
}

// Feature is one capability of the running kernel and how it was learned.
type Feature struct {
	Support Support
	// Option is the build option that decides it: the one that is missing
	// when Support is Missing ("CONFIG_NVME_HOST_AUTH").
	Option string
	// Source says where the answer came from: a config file, a
	// controller's attributes.
	Source string
}

func (f Feature) String() string {
	switch f.Support {
	case Supported:
		return fmt.Sprintf("yes (%s, from %s)", f.Option, f.Source)
	case Missing:
		return fmt.Sprintf("no (%s not set, from %s)", f.Option, f.Source)
	default:
		return "unknown (" + f.Source + ")"
	}
}

// Capabilities is what the running kernel can do for NVMe over Fabrics
// beyond a plain connect. The fabrics option list (/dev/nvme-fabrics)
// cannot tell: a kernel built without authentication still lists
// dhchap_secret, and its connect then fails deep inside.
type Capabilities struct {
	Release string // uname -r
	// HostAuth is in-band authentication (DH-HMAC-CHAP) on the host side:
	// CONFIG_NVME_HOST_AUTH since Linux 6.7, CONFIG_NVME_AUTH before.
	HostAuth Feature
	// TLS is NVMe/TCP TLS on the host side (CONFIG_NVME_TCP_TLS).
	TLS Feature
	// IOPolicies are the native multipath I/O policies nvme_core offers
	// (numa, round-robin, queue-depth); nil when they could not be read.
	IOPolicies []string
}

// Host DH-HMAC-CHAP's build options: the name since 6.7, and before.
const (
	OptionHostAuth    = "CONFIG_NVME_HOST_AUTH"
	OptionAuthOld     = "CONFIG_NVME_AUTH"
	OptionTCPTLS      = "CONFIG_NVME_TCP_TLS"
	defaultProcConfig = "/proc/config.gz"
)

// ErrNoHostAuth: the running kernel cannot authenticate NVMe connections.
var ErrNoHostAuth = errors.New("the kernel has no NVMe in-band authentication (DH-HMAC-CHAP)")

// CheckHostAuth returns nil unless the kernel is known to lack host
// DH-HMAC-CHAP; then the error matches ErrNoHostAuth and names the kernel
// and the missing option. Unknown is not refused: the connect is tried,
// and its own error is what the caller gets.
func (c Capabilities) CheckHostAuth() error {
	if c.HostAuth.Support != Missing {
		return nil
	}
	return fmt.Errorf("%w: kernel %s was built without %s (%s); dhchap_secret needs a kernel with %s=y "+
		"(Debian trixie's 6.12, or bookworm-backports), or stage the volume without DH-HMAC-CHAP secrets",
		ErrNoHostAuth, c.Release, c.HostAuth.Option, c.HostAuth.Source, OptionHostAuth)
}

// CapabilityConfig says where DetectCapabilities looks; zero values are the
// real host's.
type CapabilityConfig struct {
	SysfsRoot string // "/sys"
	// ConfigFiles are read in order, the first that exists wins; nil is
	// /proc/config.gz, then /boot/config-<release>. A .gz is gunzipped.
	ConfigFiles []string
	// Release is the running kernel's release; "" reads uname.
	Release string
	// ModuleParams returns `modinfo -F parm MODULE`; nil runs modinfo.
	ModuleParams func(ctx context.Context, module string) (string, error)
	Exec         CommandRunner
}

// DetectCapabilities learns what the running kernel can do: from its build
// configuration where it can be read, otherwise from what sysfs shows (a
// fabrics controller has dhchap_secret only when authentication is built
// in). It never fails: what it cannot learn is Unknown, with the reason.
func DetectCapabilities(ctx context.Context, cfg CapabilityConfig) Capabilities {
	if cfg.SysfsRoot == "" {
		cfg.SysfsRoot = DefaultSysfsRoot
	}
	caps := Capabilities{Release: cfg.Release}
	if caps.Release == "" {
		caps.Release = unameRelease()
	}
	files := cfg.ConfigFiles
	if files == nil {
		files = []string{defaultProcConfig, "/boot/config-" + caps.Release}
	}
	conf, source, confErr := readKernelConfig(files)
	if confErr == nil {
		caps.HostAuth = hostAuthFromConfig(conf, source)
		caps.TLS = tlsFromConfig(conf, source)
	} else {
		caps.HostAuth = hostAuthFromSysfs(cfg.SysfsRoot, confErr)
		caps.TLS = Feature{Option: OptionTCPTLS, Source: confErr.Error()}
	}
	params := cfg.ModuleParams
	if params == nil {
		run := cfg.Exec
		if run == nil {
			run = execRunner{}
		}
		params = func(ctx context.Context, module string) (string, error) {
			out, _, err := run.Run(ctx, "modinfo", []string{"-F", "parm", module})
			return string(out), err
		}
	}
	if text, err := params(ctx, "nvme_core"); err == nil {
		caps.IOPolicies = parseIOPolicies(text)
	}
	return caps
}

func unameRelease() string {
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		return "(unknown)"
	}
	var b strings.Builder
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		b.WriteByte(byte(c))
	}
	return b.String()
}

// kernelConfig maps CONFIG_X to its value: "y", "m", a string, or "" for
// "# CONFIG_X is not set". An option the kernel does not know is absent.
type kernelConfig map[string]string

var notSet = regexp.MustCompile(`^# (CONFIG_[A-Za-z0-9_]+) is not set$`)

// maxConfigSize bounds what is read of a config file (Debian's is ~280 KB).
const maxConfigSize = 4 << 20

// readKernelConfig reads the first of files that exists.
func readKernelConfig(files []string) (kernelConfig, string, error) {
	var tried []string
	for _, f := range files {
		b, err := readConfigFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			tried = append(tried, f)
			continue
		}
		if err != nil {
			return nil, "", err
		}
		return parseKernelConfig(b), f, nil
	}
	return nil, "", fmt.Errorf("no kernel config: none of %s exists", strings.Join(tried, ", "))
}

func readConfigFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("kernel config: %w", err)
	}
	defer func() { _ = f.Close() }()
	var r io.Reader = f
	if strings.HasSuffix(name, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("kernel config %s: %w", name, err)
		}
		r = zr
	}
	b, err := io.ReadAll(io.LimitReader(r, maxConfigSize))
	if err != nil {
		return nil, fmt.Errorf("kernel config %s: %w", name, err)
	}
	return b, nil
}

func parseKernelConfig(b []byte) kernelConfig {
	conf := kernelConfig{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if m := notSet.FindStringSubmatch(line); m != nil {
			conf[m[1]] = ""
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok && strings.HasPrefix(k, "CONFIG_") {
			conf[k] = strings.Trim(v, `"`)
		}
	}
	return conf
}

func (c kernelConfig) enabled(option string) bool {
	v := c[option]
	return v == "y" || v == "m"
}

// hostAuthFromConfig: since 6.7 CONFIG_NVME_HOST_AUTH is the host's switch
// (CONFIG_NVME_AUTH is then the library the target uses too); before, the
// host's switch was CONFIG_NVME_AUTH itself.
func hostAuthFromConfig(c kernelConfig, source string) Feature {
	option := OptionHostAuth
	if _, known := c[OptionHostAuth]; !known {
		option = OptionAuthOld
	}
	if c.enabled(option) {
		return Feature{Support: Supported, Option: option, Source: source}
	}
	return Feature{Support: Missing, Option: option, Source: source}
}

func tlsFromConfig(c kernelConfig, source string) Feature {
	if c.enabled(OptionTCPTLS) {
		return Feature{Support: Supported, Option: OptionTCPTLS, Source: source}
	}
	return Feature{Support: Missing, Option: OptionTCPTLS, Source: source}
}

// hostAuthFromSysfs decides from a fabrics controller's attributes
// (dhchap_secret exists only with authentication built in); without one,
// from whether nvme_core holds the nvme_auth module.
func hostAuthFromSysfs(root string, confErr error) Feature {
	option := OptionHostAuth + " (" + OptionAuthOld + " before Linux 6.7)"
	class := filepath.Join(root, "class", "nvme")
	names, _ := readDirNames(class)
	for _, n := range names {
		dir := filepath.Join(class, n)
		transport, err := readAttr(dir, "transport")
		if err != nil || transport == "pcie" {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, "dhchap_secret")); err == nil {
			return Feature{Support: Supported, Option: option, Source: "the attributes of controller " + n}
		} else if errors.Is(err, fs.ErrNotExist) {
			return Feature{Support: Missing, Option: option, Source: "the attributes of controller " + n + " (no dhchap_secret)"}
		}
	}
	if _, err := os.Stat(filepath.Join(root, "module", "nvme_auth", "holders", "nvme_core")); err == nil {
		return Feature{Support: Supported, Option: option, Source: "nvme_core's use of the nvme_auth module"}
	}
	return Feature{Option: option, Source: confErr.Error() + ", and no fabrics controller to look at"}
}

var quoted = regexp.MustCompile(`'([a-z-]+)'`)

// parseIOPolicies reads nvme_core's iopolicy parameter description:
// "iopolicy:Default multipath I/O policy; 'numa' (default), 'round-robin' or 'queue-depth'".
func parseIOPolicies(parms string) []string {
	for line := range strings.Lines(parms) {
		desc, ok := strings.CutPrefix(strings.TrimSpace(line), "iopolicy:")
		if !ok {
			continue
		}
		var out []string
		for _, m := range quoted.FindAllStringSubmatch(desc, -1) {
			out = append(out, m[1])
		}
		return out
	}
	return nil
}
