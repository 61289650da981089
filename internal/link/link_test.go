package link

import (
	"bufio"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/prop"
)

var quiet = slog.New(slog.DiscardHandler)

// busConfig is a private bus anyone on this machine may use and own names on.
const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>custom</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
    <allow own="*"/>
  </policy>
</busconfig>
`

// startBus runs a real dbus-daemon on a socket in t.TempDir() and returns
// its address. Without dbus-daemon (Debian's dbus package) the test skips,
// or fails when ASSETD_REQUIRE_TOOLS=1.
func startBus(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("dbus-daemon")
	if err != nil {
		msg := "dbus-daemon is not installed (Debian: apt-get install dbus; make tools does it)"
		if os.Getenv("ASSETD_REQUIRE_TOOLS") == "1" {
			t.Fatalf("ASSETD_REQUIRE_TOOLS=1 and %s", msg)
		}
		t.Skip(msg)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "bus.conf")
	sock := filepath.Join(dir, "bus")
	if err := os.WriteFile(conf, []byte(strings.Replace(busConfig, "%s", sock, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config-file="+conf, "--nofork", "--print-address=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
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
		t.Fatalf("dbus-daemon printed no address: %v", err)
	}
	return strings.TrimSpace(addr)
}

// fakeNM is a stand-in NetworkManager: it owns the name on the bus and
// exports the Metered property, emitting PropertiesChanged when it changes.
type fakeNM struct {
	conn  *dbus.Conn
	props *prop.Properties
}

func startNM(t *testing.T, addr string, metered uint32) *fakeNM {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	props, err := prop.Export(conn, nmPath, prop.Map{nmIface: {
		"Metered": {Value: metered, Emit: prop.EmitTrue},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := conn.RequestName(nmName, dbus.NameFlagDoNotQueue); err != nil || r != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("owning %s: %v, %v", nmName, r, err)
	}
	nm := &fakeNM{conn: conn, props: props}
	t.Cleanup(nm.stop)
	return nm
}

func (nm *fakeNM) set(metered uint32) { nm.props.SetMust(nmIface, "Metered", metered) }

func (nm *fakeNM) stop() { _ = nm.conn.Close() }

// watch runs a Watcher on addr and returns the channel of its reports.
func watch(t *testing.T, addr string) <-chan bool {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	got := make(chan bool, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = (&Watcher{Address: addr, Log: quiet}).Run(ctx, func(m bool) { got <- m })
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return got
}

// next waits for the watcher's next report; the bound only stops a broken
// test, it measures nothing.
func next(t *testing.T, got <-chan bool) bool {
	t.Helper()
	select {
	case m := <-got:
		return m
	case <-time.After(30 * time.Second):
		t.Fatal("the watcher reported nothing")
		return false
	}
}

func expect(t *testing.T, got <-chan bool, want bool, what string) {
	t.Helper()
	if m := next(t, got); m != want {
		t.Fatalf("%s: metered = %v, want %v", what, m, want)
	}
}

func TestMeteredFollowsNetworkManager(t *testing.T) {
	addr := startBus(t)
	nm := startNM(t, addr, meteredYes)
	got := watch(t, addr)
	expect(t, got, true, "NM_METERED_YES at start")

	nm.set(4) // GUESS_NO
	expect(t, got, false, "GUESS_NO")
	nm.set(2) // NO: no change, no report
	nm.set(meteredGuessYes)
	expect(t, got, true, "GUESS_YES")
	nm.set(0) // UNKNOWN
	expect(t, got, false, "UNKNOWN")
	nm.set(meteredYes)
	expect(t, got, true, "YES")

	nm.stop()
	expect(t, got, false, "NetworkManager left the bus")
	startNM(t, addr, meteredGuessYes)
	expect(t, got, true, "NetworkManager back, GUESS_YES")
}

func TestNoNetworkManagerIsUnmetered(t *testing.T) {
	addr := startBus(t)
	got := watch(t, addr)
	expect(t, got, false, "no NetworkManager on the bus")
	startNM(t, addr, meteredYes)
	expect(t, got, true, "NetworkManager started, metered")
}

func TestNoBusIsUnmetered(t *testing.T) {
	got := watch(t, "unix:path="+filepath.Join(t.TempDir(), "none"))
	expect(t, got, false, "no bus")
}
