package daemon

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/assetd/assetd/internal/alive"

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

// watchdogInterval is the systemd watchdog's interval (WATCHDOG_USEC),
// 0 when the watchdog is off or meant for another process.
func (n *notifier) watchdogInterval() time.Duration {
	interval, err := sd.SdWatchdogEnabled(false)
	if err != nil {
		n.log.Warn("systemd watchdog settings are invalid; not pinging", "err", err)
		return 0
	}
	return max(interval, 0)
}

// watchdog pings the systemd watchdog at half its interval until ctx ends,
// while every loop of mon turns. When one stops (alive.Monitor.Stalled),
// the pings stop, so that systemd aborts and restarts the daemon (SIGABRT:
// the Go runtime prints every goroutine's stack to the journal first), and
// one warning names the loops; should they turn again, pinging resumes.
// It returns a func that waits for the pinging goroutine to stop; with
// interval 0 nothing is started.
func (n *notifier) watchdog(ctx context.Context, interval time.Duration, mon *alive.Monitor) (wait func()) {
	if interval <= 0 {
		return func() {}
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(interval / 2)
		defer t.Stop()
		var warned []string
		for {
			switch stalled := mon.Stalled(); {
			case len(stalled) == 0:
				n.notify(sd.SdNotifyWatchdog)
				if warned != nil {
					n.log.Info("the stalled loops turn again; pinging the systemd watchdog", "loops", warned)
					warned = nil
				}
			case !slices.Equal(stalled, warned):
				n.log.Warn("a daemon loop has stopped turning; no longer pinging the systemd watchdog, which will restart the daemon",
					"loops", stalled)
				warned = stalled
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
	return wg.Wait
}
