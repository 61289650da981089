package link

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/godbus/dbus/v5"
)

// NetworkManager's names on the bus.
const (
	nmName  = "org.freedesktop.NetworkManager"
	nmPath  = dbus.ObjectPath("/org/freedesktop/NetworkManager")
	nmIface = "org.freedesktop.NetworkManager"

	propsIface = "org.freedesktop.DBus.Properties"
)

// NMMetered values (NetworkManager's nm-dbus-types) that count as metered.
const (
	meteredYes      = 1
	meteredGuessYes = 3
)

// Watcher reports the default route's metered state.
type Watcher struct {
	// Address is the bus to watch; "" is the system bus
	// (DBUS_SYSTEM_BUS_ADDRESS or /run/dbus/system_bus_socket).
	Address string
	Log     *slog.Logger
}

// Run calls set with the metered state at start and at each change, until
// ctx ends or the bus goes away (then once more with false). Without a bus
// it calls set(false) and waits for ctx.
func (w *Watcher) Run(ctx context.Context, set func(metered bool)) error {
	log := w.Log
	if log == nil {
		log = slog.Default()
	}
	conn, err := w.connect(ctx)
	if err != nil {
		log.Info("no system D-Bus: the link counts as unmetered", "err", err)
		set(false)
		<-ctx.Done()
		return nil
	}
	defer conn.Close()

	signals := make(chan *dbus.Signal, 16)
	conn.Signal(signals)
	defer conn.RemoveSignal(signals)
	// Subscribe before the first read, so no change falls between them.
	if err := conn.AddMatchSignalContext(ctx,
		dbus.WithMatchSender(nmName), dbus.WithMatchObjectPath(nmPath),
		dbus.WithMatchInterface(propsIface), dbus.WithMatchMember("PropertiesChanged"),
		dbus.WithMatchArg(0, nmIface)); err != nil {
		return fmt.Errorf("watching NetworkManager's properties: %w", err)
	}
	if err := conn.AddMatchSignalContext(ctx,
		dbus.WithMatchSender("org.freedesktop.DBus"), dbus.WithMatchInterface("org.freedesktop.DBus"),
		dbus.WithMatchMember("NameOwnerChanged"), dbus.WithMatchArg(0, nmName)); err != nil {
		return fmt.Errorf("watching NetworkManager's name: %w", err)
	}

	state := newReporter(set, log)
	state.report(readMetered(ctx, conn, log))
	for {
		select {
		case <-ctx.Done():
			return nil
		case sig, ok := <-signals:
			if !ok {
				log.Warn("the system D-Bus connection closed: the link counts as unmetered")
				state.report(false)
				<-ctx.Done()
				return nil
			}
			if m, known := meteredFrom(sig); known {
				state.report(m)
			} else if refetch(sig) {
				state.report(readMetered(ctx, conn, log))
			}
		}
	}
}

func (w *Watcher) connect(ctx context.Context) (*dbus.Conn, error) {
	if w.Address == "" {
		return dbus.ConnectSystemBus(dbus.WithContext(ctx))
	}
	return dbus.Connect(w.Address, dbus.WithContext(ctx))
}

// readMetered asks NetworkManager; false when it does not run.
func readMetered(ctx context.Context, conn *dbus.Conn, log *slog.Logger) bool {
	var v dbus.Variant
	err := conn.Object(nmName, nmPath).CallWithContext(ctx, propsIface+".Get", 0, nmIface, "Metered").Store(&v)
	if err != nil {
		var de dbus.Error
		if !errors.As(err, &de) || (de.Name != "org.freedesktop.DBus.Error.ServiceUnknown" && de.Name != "org.freedesktop.DBus.Error.NameHasNoOwner") {
			log.Warn("reading NetworkManager's Metered property failed: the link counts as unmetered", "err", err)
		}
		return false
	}
	return isMetered(v)
}

func isMetered(v dbus.Variant) bool {
	n, ok := v.Value().(uint32)
	return ok && (n == meteredYes || n == meteredGuessYes)
}

// meteredFrom reads a PropertiesChanged that carries Metered, and a
// NameOwnerChanged that says NetworkManager left the bus.
func meteredFrom(sig *dbus.Signal) (metered, known bool) {
	switch sig.Name {
	case propsIface + ".PropertiesChanged":
		if len(sig.Body) < 2 {
			return false, false
		}
		changed, _ := sig.Body[1].(map[string]dbus.Variant)
		if v, ok := changed["Metered"]; ok {
			return isMetered(v), true
		}
	case "org.freedesktop.DBus.NameOwnerChanged":
		if len(sig.Body) == 3 && sig.Body[2] == "" {
			return false, true // NetworkManager stopped
		}
	}
	return false, false
}

// refetch says whether sig calls for reading the property again:
// NetworkManager started, or invalidated Metered without a value.
func refetch(sig *dbus.Signal) bool {
	switch sig.Name {
	case "org.freedesktop.DBus.NameOwnerChanged":
		return true
	case propsIface + ".PropertiesChanged":
		if len(sig.Body) == 3 {
			inv, _ := sig.Body[2].([]string)
			for _, p := range inv {
				if p == "Metered" {
					return true
				}
			}
		}
	}
	return false
}

// reporter calls set at the first report and at each change, and logs
// the changes.
type reporter struct {
	set   func(bool)
	log   *slog.Logger
	known bool
	last  bool
}

func newReporter(set func(bool), log *slog.Logger) *reporter {
	return &reporter{set: set, log: log}
}

func (r *reporter) report(metered bool) {
	if r.known && metered == r.last {
		return
	}
	if metered || r.known {
		r.log.Info("the default route's metering changed", "metered", metered)
	}
	r.known, r.last = true, metered
	r.set(metered)
}
