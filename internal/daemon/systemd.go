package daemon

import (
	"context"
	"log/slog"
	"sync"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
)

// notifier speaks sd_notify. Without $NOTIFY_SOCKET every call is a no-op.
type notifier struct {
	log  *slog.Logger
	send func(state string) (bool, error) // a seam for tests
}

func newNotifier(log *slog.Logger) *notifier {
	return &notifier{log: log, send: func(state string) (bool, error) { return sd.SdNotify(false, state) }}
}

func (n *notifier) notify(state string) {
	if _, err := n.send(state); err != nil {
		n.log.Debug("sd_notify failed", "state", state, "err", err)
	}
}

func (n *notifier) ready(status string) { n.notify(sd.SdNotifyReady + "\nSTATUS=" + status) }
func (n *notifier) status(status string) {
	n.notify("STATUS=" + status)
}
func (n *notifier) stopping() { n.notify(sd.SdNotifyStopping + "\nSTATUS=stopping") }

// reloading announces a reload; the returned func announces its end.
// RELOADING=1 must carry MONOTONIC_USEC for Type=notify-reload units.
func (n *notifier) reloading() func(status string) {
	n.notify(sd.SdNotifyReloading + "\n" + sd.SdNotifyMonotonicUsec() + "\nSTATUS=reloading configuration")
	return func(status string) { n.ready(status) }
}

// watchdog pings the systemd watchdog at half its interval until ctx ends.
// It returns a func that waits for the pinging goroutine to stop; when the
// watchdog is off, nothing is started.
func (n *notifier) watchdog(ctx context.Context) (wait func()) {
	interval, err := sd.SdWatchdogEnabled(false)
	if err != nil {
		n.log.Warn("systemd watchdog settings are invalid; not pinging", "err", err)
	}
	if err != nil || interval <= 0 {
		return func() {}
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(interval / 2)
		defer t.Stop()
		for {
			n.notify(sd.SdNotifyWatchdog)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
	return wg.Wait
}
