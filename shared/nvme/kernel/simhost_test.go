package kernel

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/nvmeof/nvmeof/shared/nvme"
	"github.com/nvmeof/nvmeof/shared/nvme/kernel/kerneltest"
)

// The connector's tests run over kerneltest: a simulated host whose sysfs
// the connector reads and whose /dev/nvme-fabrics and sysfs attributes it
// writes through ControlFiles, as it does on a real host.

const (
	nqnOne = "nqn.2026-01.io.nvmeof.lab:one"
	nqnTwo = "nqn.2026-01.io.nvmeof.lab:two"

	testHostNQN = "nqn.2026-01.io.nvmeof.lab:host-1"
	testHostID  = "0aaaaaaa-0000-4000-8000-00000000000a"
	// otherHostNQN is another host, with its own ID: the kernel refuses a
	// host ID known with another host NQN.
	otherHostNQN = "nqn.2026-01.io.nvmeof.lab:host-2"
	otherHostID  = "0bbbbbbb-0000-4000-8000-00000000000b"
)

var (
	nsOne = kerneltest.Namespace{NSID: 1, UUID: "11111111-1111-4111-8111-111111111111", NGUID: "11111111111111111111111111111111", SizeBytes: 128 << 20}
	nsTwo = kerneltest.Namespace{NSID: 2, UUID: "22222222-2222-4222-8222-222222222222", NGUID: "22222222222222222222222222222222", SizeBytes: 128 << 20}
	// nsNoUUID has only an NGUID: sysfs shows it as the uuid too.
	nsNoUUID = kerneltest.Namespace{NSID: 7, NGUID: "77777777777777777777777777777777", SizeBytes: 8 * 512}
)

// fastBackoff retries at once, so tests exercise the retry path without
// waiting.
var fastBackoff = wait.Backoff{Duration: time.Microsecond, Factor: 1, Steps: 4}

// valid validates c for the connector, failing the test when it is not.
func valid(tb testing.TB, c nvme.Connection) nvme.ValidConnection {
	tb.Helper()
	v, err := c.Valid()
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

func connectionTo(nqn string) nvme.Connection {
	return nvme.Connection{
		Host:   nvme.Host{NQN: testHostNQN, ID: testHostID},
		Target: nvme.Target{Transport: nvme.TransportTCP, TrAddr: "127.0.0.1", TrSvcID: nvme.DefaultTrSvcID, NQN: nqn},
		Config: nvme.DefaultConnectionConfig(),
	}
}

// adminOptions is the option string of an administrator's connect to nqn
// as host-1 on 127.0.0.1:4420, with extra options appended.
func adminOptions(nqn string, extra ...string) string {
	return strings.Join(append([]string{
		"nqn=" + nqn, "transport=tcp", "traddr=127.0.0.1", "trsvcid=4420",
		"hostnqn=" + testHostNQN, "hostid=" + testHostID,
	}, extra...), ",")
}

// adminConnect creates a controller outside the connector and returns its
// name.
func adminConnect(t testing.TB, h *kerneltest.Host, options string) string {
	t.Helper()
	name, err := h.AdminConnect(options)
	if err != nil {
		t.Fatalf("admin connect: %v (dmesg %q)", err, h.Dmesg())
	}
	return name
}

// newTestConnector is a fabrics connector on h, which resolves
// target.example to 127.0.0.1.
func newTestConnector(t testing.TB, h *kerneltest.Host) *kernelConnector {
	t.Helper()
	h.SetHostAddr("target.example", "127.0.0.1")
	c, err := NewConnector(ConnectorConfig{SysfsRoot: h.SysfsRoot(), DevRoot: h.DevRoot(), Backoff: fastBackoff,
		ControlFiles: h, LookupHost: h.LookupHost, DiskEvents: simulatedDiskEvents(h)})
	if err != nil {
		t.Fatal(err)
	}
	return c.(*kernelConnector)
}

// ctrlAttr reads an attribute of controller name as sysfs shows it.
func ctrlAttr(t *testing.T, h *kerneltest.Host, name, attr string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(h.SysfsRoot(), "class/nvme", name, attr))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// controllerNames lists the host's controllers as "name=state".
func controllerNames(h *kerneltest.Host) string {
	var names []string
	for _, c := range h.Controllers() {
		names = append(names, c.Name+"="+c.State)
	}
	return strings.Join(names, " ")
}
