package nvme

import (
	"strconv"
	"strings"
)

// Connection is one controller to create: who connects, to where, how the
// kernel keeps it, and how it authenticates.
type Connection struct {
	Host   Host
	Target Target
	Config ConnectionConfig
	Auth   Auth
}

// Validate checks every part. The kernel takes only literal addresses, so
// a Target naming a host must be resolved before it becomes a Connection.
func (c Connection) Validate() error {
	var errs FieldErrors
	for _, err := range []error{c.Host.Validate(), c.Target.Validate(NQNFreeForm), c.Config.Validate(), c.Auth.Validate()} {
		errs = append(errs, AsFieldErrors(err)...)
	}
	if c.Target.TrAddr != "" && !c.Target.IsIPAddress() && len(errs) == 0 {
		errs = append(errs, &FieldError{Key: KeyTrAddr, Value: c.Target.TrAddr,
			Reason: "is a host name, but the kernel takes only IP addresses: resolve it before connecting"})
	}
	return errs.orNil()
}

// ValidConnection is a Connection that passed Validate: the only kind the
// kernel side accepts, so validation runs once, where the connection is
// made, and the renderings below cannot fail on a bad value.
type ValidConnection struct {
	c     Connection
	valid bool
}

// Valid validates c (see Validate) and returns it as a ValidConnection.
func (c Connection) Valid() (ValidConnection, error) {
	if err := c.Validate(); err != nil {
		return ValidConnection{}, err
	}
	return ValidConnection{c: c, valid: true}, nil
}

// Checked reports whether v came from Valid, not from a zero value.
func (v ValidConnection) Checked() bool { return v.valid }

// errUnchecked is what a ValidConnection that never passed Valid gets.
var errUnchecked = &FieldError{Key: KeyNQN, Reason: "the connection was never validated (a zero ValidConnection)"}

// Check returns an error unless v came from Valid.
func (v ValidConnection) Check() error {
	if !v.valid {
		return errUnchecked
	}
	return nil
}

// Connection returns the connection itself.
func (v ValidConnection) Connection() Connection { return v.c }

// FabricsOptions validates c and renders its option string; see
// ValidConnection.FabricsOptions.
func (c Connection) FabricsOptions() (string, error) {
	v, err := c.Valid()
	if err != nil {
		return "", err
	}
	return v.FabricsOptions(), nil
}

// BuildConnectArgs validates c and renders its nvme-cli arguments; see
// ValidConnection.BuildConnectArgs.
func (c Connection) BuildConnectArgs() ([]string, error) {
	v, err := c.Valid()
	if err != nil {
		return nil, err
	}
	return v.BuildConnectArgs()
}

// FabricsOptions renders the option string written to /dev/nvme-fabrics:
// integers in decimal (the kernel reads base 0: "010" would be 8), trsvcid
// and the host identity always, flags without values. The string holds
// DH-HMAC-CHAP keys when Auth has them: never log it.
func (v ValidConnection) FabricsOptions() string {
	c := v.c
	var b strings.Builder
	opt := func(k, v string) {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
		if v != "" {
			b.WriteByte('=')
			b.WriteString(v)
		}
	}
	c.each(func(o option) { opt(o.key, o.value) })
	return b.String()
}

// BuildConnectArgs renders the same connection as nvme-cli arguments, for
// exec without a shell: {"connect", "-t", "tcp", ...}. nvme-cli drops integer
// options that are 0, so ctrl_loss_tmo=0 and fast_io_fail_tmo=0 would
// silently become the kernel's defaults there: they are refused. So is a
// text value starting with '-': nvme-cli's option parser must never be
// able to read a value as an option of its own.
func (v ValidConnection) BuildConnectArgs() ([]string, error) {
	c := v.c
	const cliDropsZero = "cannot be 0 with the nvme-cli connector (nvme-cli leaves out options that are 0, so the kernel's default would apply); use the fabrics connector"
	if c.Config.CtrlLossTmo == 0 {
		return nil, &FieldError{Key: KeyCtrlLossTmo, Value: "0", Reason: cliDropsZero}
	}
	if c.Config.FastIOFailTmo != nil && *c.Config.FastIOFailTmo == 0 {
		return nil, &FieldError{Key: KeyFastIOFailTmo, Value: "0", Reason: cliDropsZero}
	}
	var errs FieldErrors
	// nvme-cli takes keys only as arguments, which every local user reads
	// in /proc/<pid>/cmdline while the connect runs.
	for _, k := range []struct {
		key string
		s   Secret
	}{{KeyDHCHAPSecret, c.Auth.HostSecret}, {KeyDHCHAPCtrlSecret, c.Auth.CtrlSecret}} {
		if k.s != "" {
			errs = append(errs, &FieldError{Key: k.key, Secret: true,
				Reason: "cannot be passed to nvme-cli without showing it to every local user (its argument vector is world-readable in /proc); use the fabrics connector for authenticated volumes"})
		}
	}
	args := []string{"connect"}
	c.each(func(o option) {
		if o.text && strings.HasPrefix(o.value, "-") {
			errs = append(errs, &FieldError{Key: o.key, Value: o.value, Secret: o.secret,
				Reason: "must not start with '-' with the nvme-cli connector (nvme-cli could read it as an option); use the fabrics connector"})
		}
		args = append(args, o.cli)
		if !o.flag {
			args = append(args, o.value)
		}
	})
	if len(errs) > 0 {
		return nil, errs
	}
	return args, nil
}

// option is one setting with its kernel name and nvme-cli flag. text marks
// a value a user wrote (numbers are rendered here); secret one that must
// never be shown.
type option struct {
	key, cli, value    string
	flag, text, secret bool
}

// each yields the options that are set, in one fixed order, so both
// renderings always carry the same settings.
func (c Connection) each(yield func(option)) {
	str := func(key, cli, v string) {
		if v != "" {
			yield(option{key: key, cli: cli, value: v, text: true})
		}
	}
	secret := func(key, cli string, s Secret) {
		if s != "" {
			yield(option{key: key, cli: cli, value: s.Reveal(), text: true, secret: true})
		}
	}
	num := func(key, cli string, p *int) {
		if p != nil {
			yield(option{key: key, cli: cli, value: strconv.Itoa(*p)})
		}
	}
	flag := func(key, cli string, on bool) {
		if on {
			yield(option{key: key, cli: cli, flag: true})
		}
	}
	t, cfg := c.Target, c.Config
	str("nqn", "-n", t.NQN)
	str("transport", "-t", t.Transport)
	str("traddr", "-a", t.TrAddr)
	str("trsvcid", "-s", t.TrSvcID)
	str("host_traddr", "-w", t.HostTrAddr)
	str("host_iface", "-f", t.HostIface)
	str("hostnqn", "-q", c.Host.NQN)
	str("hostid", "-I", c.Host.ID)
	num("nr_io_queues", "-i", cfg.NrIOQueues)
	num("queue_size", "-Q", cfg.QueueSize)
	num("keep_alive_tmo", "-k", cfg.KeepAliveTmo)
	num("reconnect_delay", "-c", &cfg.ReconnectDelay)
	num("ctrl_loss_tmo", "-l", &cfg.CtrlLossTmo)
	num("fast_io_fail_tmo", "-F", cfg.FastIOFailTmo)
	num("tos", "-T", cfg.TOS)
	flag("hdr_digest", "-g", cfg.HdrDigest)
	flag("data_digest", "-G", cfg.DataDigest)
	secret(KeyDHCHAPSecret, "-S", c.Auth.HostSecret)
	secret(KeyDHCHAPCtrlSecret, "-C", c.Auth.CtrlSecret)
}
