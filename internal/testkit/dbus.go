package testkit

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/prop"
)

// busConfig is a private bus anyone on this machine may use and own names on.
const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>custom</type>
  <listen>unix:path=SOCKET</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
    <allow own="*"/>
  </policy>
</busconfig>
`

// StartBus runs a real dbus-daemon (Debian's dbus package) on a socket in
// a temp dir, stopped after the test, and returns its address: a
// daemon's system bus when passed as DBUS_SYSTEM_BUS_ADDRESS. Without
// dbus-daemon the test skips, or fails when ASSETD_REQUIRE_TOOLS=1.
func StartBus(t testing.TB) string {
	t.Helper()
	bin := LookTool(t, "dbus-daemon", "dbus")
	dir := ShortDir(t)
	conf := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(conf, []byte(strings.Replace(busConfig, "SOCKET", filepath.Join(dir, "bus"), 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config-file="+conf, "--nofork", "--print-address=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &LogBuf{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("dbus-daemon's stderr:\n%s", stderr.String())
		}
	})
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("dbus-daemon printed no address: %v; stderr:\n%s", err, stderr.String())
	}
	return strings.TrimSpace(addr)
}

// NetworkManager's Metered values (nm-dbus-types' NMMetered).
const (
	MeteredUnknown  uint32 = 0
	MeteredYes      uint32 = 1
	MeteredNo       uint32 = 2
	MeteredGuessYes uint32 = 3
	MeteredGuessNo  uint32 = 4
)

// NetworkManager is a stand-in for NetworkManager on a bus: it owns
// org.freedesktop.NetworkManager and exports the Metered property of
// /org/freedesktop/NetworkManager, emitting PropertiesChanged when it
// changes, as the real one does.
type NetworkManager struct {
	conn  *dbus.Conn
	props *prop.Properties
}

// StartNetworkManager puts a stand-in NetworkManager with Metered =
// metered on the bus at addr; it leaves the bus after the test or at Stop.
func StartNetworkManager(t testing.TB, addr string, metered uint32) *NetworkManager {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	const name, iface = "org.freedesktop.NetworkManager", "org.freedesktop.NetworkManager"
	props, err := prop.Export(conn, "/org/freedesktop/NetworkManager", prop.Map{iface: {
		"Metered": {Value: metered, Emit: prop.EmitTrue},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := conn.RequestName(name, dbus.NameFlagDoNotQueue); err != nil || r != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("owning %s: %v, %v", name, r, err)
	}
	nm := &NetworkManager{conn: conn, props: props}
	t.Cleanup(nm.Stop)
	return nm
}

// Set changes Metered and emits PropertiesChanged.
func (nm *NetworkManager) Set(metered uint32) {
	nm.props.SetMust("org.freedesktop.NetworkManager", "Metered", metered)
}

// Stop leaves the bus (NetworkManager stopped).
func (nm *NetworkManager) Stop() { _ = nm.conn.Close() }
