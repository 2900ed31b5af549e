package nvme

import "testing"

func BenchmarkParseVolumeContext(b *testing.B) {
	m := map[string]string{
		"traddr": "192.0.2.10", "nqn": testNQN, "nsid": "1", "uuid": "11111111-1111-4111-8111-111111111111",
		"ctrl_loss_tmo": "-1", "reconnect_delay": "5", "keep_alive_tmo": "10", "nomad/alloc": "x",
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseVolumeContext(m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFabricsOptions(b *testing.B) {
	c := testConnection()
	c.Config.KeepAliveTmo, c.Config.QueueSize = new(10), new(128)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.FabricsOptions(); err != nil {
			b.Fatal(err)
		}
	}
}
