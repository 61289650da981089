package errcode_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"

	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/client"
)

// A program outside assetd tells, by the reason of a client call's error,
// a cached avatar with a damaged file (load it again to heal it) from one
// that was never cached.
func ExampleError() {
	socket, stop := fakeDaemon()
	defer stop()

	c := client.New(socket)
	_, err := c.Get(context.Background(), "rohan")

	var e *errcode.Error
	switch {
	case errors.As(err, &e) && e.Reason == errcode.ReasonDamaged:
		fmt.Printf("%s: %s is damaged (%s); load it again\n", e.Code, e.AvatarID, e.Asset)
	case errors.As(err, &e) && e.Reason == errcode.ReasonNotCached:
		fmt.Printf("%s: %s is not cached; load it\n", e.Code, e.AvatarID)
	case errors.Is(err, errcode.DaemonNotRunning):
		fmt.Println("start assetd first")
	case err != nil:
		fmt.Println(err)
	}
	// Output: avatarAssetMissing: rohan is damaged (model.splat); load it again
}

// fakeDaemon listens on a Unix socket and answers every request as assetd
// answers GET /v1/avatars/rohan when a file of the cached avatar is damaged.
func fakeDaemon() (socket string, stop func()) {
	dir, err := os.MkdirTemp("", "errcode-example")
	if err != nil {
		panic(err)
	}
	socket = filepath.Join(dir, "assetd.sock")
	ln, err := net.Listen("unix", socket)
	if err != nil {
		panic(err)
	}
	damaged := &errcode.Error{Code: errcode.AvatarAssetMissing, Phase: errcode.PhaseVerify,
		AvatarID: "rohan", Reason: errcode.ReasonDamaged, Asset: "model.splat",
		Message: "model.splat does not match its sha256"}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusConflict)
		json.NewEncoder(w).Encode(errcode.Envelope{Error: damaged.Body()})
	})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	return socket, func() {
		srv.Close()
		<-done
		os.RemoveAll(dir)
	}
}
