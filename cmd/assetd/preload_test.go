package main

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/vbauerster/mpb/v8"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/api/apitest"
	"github.com/assetd/assetd/internal/errs"
)

const mib = 1 << 20

func TestPreloadPlainLines(t *testing.T) {
	noLeaks(t)
	f := startDaemon(t)
	f.Script("rohan", progressEvents("rohan", 10_000_000, 0, 3, 5, 12, 15, 19, 50, 51, 100)...)
	f.Put(testAvatar("maya", 7654604)) // cached: completed at once

	out, errOut, code := cli(t, t.Context(), "", "preload", "rohan", "maya", "rohan", "--socket", f.sock)
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	want := []string{
		"rohan: downloading 0% (0 B of 9.5 MiB)",
		"rohan: downloading 12% (1.1 MiB of 9.5 MiB)",
		"rohan: downloading 50% (4.8 MiB of 9.5 MiB)",
		"rohan: downloading 100% (9.5 MiB of 9.5 MiB)",
		"rohan: completed, version 2026-11-01.3, 9.5 MiB",
	}
	if got := lines(out, "rohan:"); !slices.Equal(got, want) {
		t.Errorf("rohan's lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := lines(out, "maya:"); !slices.Equal(got, []string{"maya: completed, version 2026-11-01.3, 7.3 MiB"}) {
		t.Errorf("maya's lines: %q", got)
	}
	var loads []string
	for _, c := range f.Calls() {
		if strings.HasPrefix(c, "Load ") {
			loads = append(loads, c)
		}
	}
	if slices.Sort(loads); !slices.Equal(loads, []string{"Load maya", "Load rohan"}) {
		t.Errorf("loads %q, want one per distinct ID", loads)
	}
}

func TestPreloadJSON(t *testing.T) {
	noLeaks(t)
	f := startDaemon(t)
	f.Script("rohan", progressEvents("rohan", 8*mib, 0, 3, 5, 100)...)
	f.Script("ghost", apitest.Failed("ghost", &errcode.Error{Code: errcode.AvatarIDUnrecognized, Message: "Avatar ID not found."}))
	// An ID the command line takes but the daemon refuses.
	f.Script("Bad..ID", apitest.Failed("Bad..ID", &errcode.Error{Code: errcode.AvatarIDUnrecognized, Reason: errcode.ReasonInvalidID, Message: "invalid avatar ID"}))

	out, errOut, code := cli(t, t.Context(), "", "preload", "--json", "rohan", "ghost", "Bad..ID", "--socket", f.sock)
	if code != errs.ExitUsage { // the daemon refused an ID: a command-line error
		t.Errorf("exit %d, want 2", code)
	}
	if errOut != "" {
		t.Errorf("stderr %q, want nothing beside the NDJSON", errOut)
	}
	byID := map[string][]apitype.Event{}
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var ev apitype.Event
		if err := dec.Decode(&ev); err != nil {
			t.Fatalf("not NDJSON: %v\n%s", err, out)
		}
		byID[ev.AvatarID] = append(byID[ev.AvatarID], ev)
	}
	if n := len(byID["rohan"]); n != 5 {
		t.Errorf("rohan: %d events, want every one of 5", n)
	}
	for id, want := range map[string]string{"rohan": "completed", "ghost": "failed", "Bad..ID": "failed"} {
		evs := byID[id]
		if len(evs) == 0 || evs[len(evs)-1].Type != want {
			t.Errorf("%s: events %+v, want the last %s", id, evs, want)
		}
	}
	if evs := byID["Bad..ID"]; len(evs) == 1 && (evs[0].Error == nil || evs[0].Error.Reason != errcode.ReasonInvalidID) {
		t.Errorf("Bad..ID: failed event without the answer's error: %+v", evs[0])
	}
}

func TestPreloadExitCodes(t *testing.T) {
	noLeaks(t)
	f := startDaemon(t)
	f.Script("rohan", progressEvents("rohan", mib, 0, 100)...)
	f.Script("ghost", apitest.Failed("ghost", &errcode.Error{Code: errcode.AvatarIDUnrecognized, Message: "Avatar ID not found."}))
	f.Script("expired", apitest.Failed("expired", &errcode.Error{Code: errcode.SessionTokenExpired, Message: "Session token has expired.", HTTPStatus: 401}))
	f.Script("broken", append(progressEvents("broken", mib, 0, 40)[:2], apitest.Failed("broken", &errcode.Error{Code: errcode.FailedToDownloadAvatarAssets,
		Message: "Failed to download avatar assets.", Reason: errcode.ReasonHashMismatch, Asset: "model.splat", HTTPStatus: 503}))...)
	f.Script("stopped", apitest.Failed("stopped", &errcode.Error{Code: errcode.Cancelled, Message: "cancelled"}))
	missing := f.sock + ".missing"

	tests := []struct {
		name   string
		args   []string
		code   int
		stderr []string // lines stderr must hold
	}{
		{"ok", []string{"rohan"}, 0, nil},
		{"avatar error", []string{"rohan", "ghost"}, 1, []string{
			`ghost: avatarIDUnrecognized: Avatar ID not found. (the origin has no avatar "ghost": check the ID, or publish it)`}},
		{"account error wins", []string{"ghost", "expired", "rohan"}, 4, []string{
			"expired: sessionTokenExpired: Session token has expired. (give assetd a new token: assetd session set --token-file FILE, or rewrite origin.session_token_file) [HTTP 401]"}},
		{"details", []string{"broken"}, 1, []string{
			"broken: failedToDownloadAvatarAssets: Failed to download avatar assets. (run: assetd preload broken; if it recurs, the origin serves bytes that differ from its manifest: republish the avatar (assetd publish)) [reason hashMismatch, asset model.splat, HTTP 503]"}},
		{"cancelled by someone else", []string{"stopped"}, 130, []string{
			"stopped: cancelled: cancelled (Load the avatar again if it is still needed.)"}},
		{"no IDs", nil, 2, nil},
		{"unknown flag", []string{"--nope", "rohan"}, 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"preload", "--socket", f.sock}, tt.args...)
			_, errOut, code := cli(t, t.Context(), "", args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.code, errOut)
			}
			for _, l := range tt.stderr {
				if !slices.Contains(strings.Split(errOut, "\n"), l) {
					t.Errorf("stderr lacks\n%s\ngot:\n%s", l, errOut)
				}
			}
		})
	}
	t.Run("daemon not running", func(t *testing.T) {
		out, errOut, code := cli(t, t.Context(), "", "preload", "--socket", missing, "rohan", "maya")
		if code != errs.ExitUnreachable || errOut != "assetd is not running at "+missing+"\n" || out != "" {
			t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
	})
}

func TestPreloadInterrupt(t *testing.T) {
	noLeaks(t)
	for _, cancelLoads := range []bool{false, true} {
		f := startDaemon(t)
		f.Script("slow", progressEvents("slow", 8*mib, 0, 20)[:2]...)
		f.Hang("slow")

		ctx, cancel := context.WithCancel(t.Context())
		type result struct {
			out, errOut string
			code        int
		}
		done := make(chan result, 1)
		args := []string{"preload", "--socket", f.sock, "slow"}
		if cancelLoads {
			args = append(args, "--cancel-on-interrupt")
		}
		go func() {
			out, errOut, code := cli(t, ctx, "", args...)
			done <- result{out, errOut, code}
		}()
		<-f.Started()
		cancel()
		r := <-done
		if r.code != errs.ExitInterrupted {
			t.Errorf("exit %d, want 130; stderr %q", r.code, r.errOut)
		}
		if !strings.HasPrefix(r.errOut, "slow: interrupted\n") {
			t.Errorf("stderr %q", r.errOut)
		}
		calls := f.Calls()
		cancelCalled := slices.Contains(calls, "CancelLoading slow")
		if cancelCalled != cancelLoads {
			t.Errorf("--cancel-on-interrupt=%v: cancel called %v (%q)", cancelLoads, cancelCalled, calls)
		}
		wantMsg := "the daemon keeps loading slow ('assetd cancel slow' stops it)"
		if cancelLoads {
			wantMsg = "cancelled the loads of slow"
		}
		if !strings.Contains(r.errOut, wantMsg) {
			t.Errorf("stderr %q lacks %q", r.errOut, wantMsg)
		}
	}
}

func TestBarView(t *testing.T) {
	noLeaks(t)
	var out, errOut bytes.Buffer
	v := newBarView(&out, &errOut, []string{"rohan", "ghost"}, mpb.WithAutoRefresh())
	for _, ev := range progressEvents("rohan", 8*mib, 0, 40, 80)[:3] {
		v.event(ev)
	}
	av := testAvatar("rohan", 8*mib)
	v.done("rohan", &av, nil)
	v.done("ghost", nil, &errcode.Error{Code: errcode.AvatarIDUnrecognized, Message: "Avatar ID not found."})
	v.finish()
	if s := out.String(); !strings.Contains(s, "✓ completed") || !strings.Contains(s, "✗ avatarIDUnrecognized") {
		t.Errorf("bars:\n%s", s)
	}
	if want := "ghost: avatarIDUnrecognized: Avatar ID not found. (the origin has no avatar \"ghost\": check the ID, or publish it)\n"; errOut.String() != want {
		t.Errorf("errors under the bars: %q", errOut.String())
	}
}
