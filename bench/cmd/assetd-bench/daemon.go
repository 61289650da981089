package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/assetd/assetd/bench"
	"github.com/assetd/assetd/client"
)

// daemon is one `assetd serve` process with its own directory.
type daemon struct {
	bin, dir, sock string
	cmd            *exec.Cmd
	started        time.Time
	exited         chan struct{}
	clientCPU      time.Duration // CPU time of the client commands run so far
	readyCPU       time.Duration // the daemon's CPU time when it was ready (preload)
	err            error
}

// daemonConfig is the shipped configuration but for the origin, the
// directories and, when fetchTOML is set, those fetch keys.
func daemonConfig(dir, originURL, fetchTOML string) string {
	return fmt.Sprintf(`[origin]
url = %q
app_id = "bench"
trusted_keys = [%q]

[fetch]
%s
[store]
dir = %q

[api]
socket = %q
`, originURL, bench.PublicKey(), fetchTOML, filepath.Join(dir, "state"), filepath.Join(dir, "assetd.sock"))
}

// startDaemon writes cfg to dir and starts `assetd serve` on it; the
// clock of the start-to-ready figure starts just before the exec.
func startDaemon(bin, dir, cfg string) (*daemon, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "assetd.toml")
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "daemon.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	d := &daemon{bin: bin, dir: dir, sock: filepath.Join(dir, "assetd.sock"), exited: make(chan struct{})}
	d.cmd = exec.Command(bin, "serve", "--config", conf)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.Env = append(os.Environ(), "ASSETD_SOCKET="+d.sock)
	d.started = time.Now()
	if err := d.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		d.err = d.cmd.Wait()
		close(d.exited)
	}()
	return d, nil
}

// waitReady polls the socket's /v1/health every millisecond and returns
// the time from the start to the first answer.
func (d *daemon) waitReady(ctx context.Context) (time.Duration, error) {
	c := client.New(d.sock)
	defer c.CloseIdleConnections()
	deadline := time.After(60 * time.Second)
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := c.Health(pctx)
		cancel()
		if err == nil {
			return time.Since(d.started), nil
		}
		select {
		case <-d.exited:
			return 0, fmt.Errorf("assetd serve exited before it was ready (%v); see %s", d.err, filepath.Join(d.dir, "daemon.log"))
		case <-deadline:
			return 0, fmt.Errorf("assetd serve not ready after a minute: %v", err)
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

func (d *daemon) pid() int { return d.cmd.Process.Pid }

// stop sends SIGTERM and waits; a daemon that lingers is killed.
func (d *daemon) stop() error {
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(20 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
		return errors.New("assetd serve did not stop within 20 s of SIGTERM")
	}
	if d.err != nil {
		return fmt.Errorf("assetd serve: %w; see %s", d.err, filepath.Join(d.dir, "daemon.log"))
	}
	return nil
}

// client runs an assetd client command against the daemon and returns
// its wall time, from exec to exit.
func (d *daemon) client(ctx context.Context, args ...string) (time.Duration, error) {
	out, err := os.OpenFile(filepath.Join(d.dir, "client.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	defer out.Close()
	cmd := exec.CommandContext(ctx, d.bin, append([]string{args[0], "--socket", d.sock}, args[1:]...)...)
	cmd.Stdout, cmd.Stderr = out, out
	start := time.Now()
	err = cmd.Run()
	took := time.Since(start)
	if cmd.ProcessState != nil {
		d.clientCPU += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	if err != nil {
		return 0, fmt.Errorf("assetd %s: %w; see %s", args[0], err, filepath.Join(d.dir, "client.log"))
	}
	return took, nil
}
