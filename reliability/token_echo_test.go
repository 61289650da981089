package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/apitype/errcode"
)

// TestTokenEchoedAsCode: an origin answers 401 with the token it received
// as its error code, as a code longer than the 64-character bound with the
// token across the cut, and at the end of a message with the token across
// the 512-byte cut. No 8 bytes of the token reach the failed events, the
// CLI's output or the daemon's debug log.
func TestTokenEchoedAsCode(t *testing.T) {
	secret := "tokE-" + randHex(20)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		body := map[string]string{"code": got, "message": "expired"}
		switch {
		case strings.Contains(r.URL.Path, "/longcode/"):
			body["code"] = strings.Repeat("c", 50) + got
		case strings.Contains(r.URL.Path, "/longmsg/"):
			body["code"], body["message"] = "sessionTokenExpired", strings.Repeat("m", 500)+" "+got+" was refused"
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		json.NewEncoder(w).Encode(body)
	}))
	defer srv.Close()
	e := newEnv(t, srv.URL)
	e.Write(e.Token, secret+"\n")
	e.writeConfig()
	p := e.Start()
	c := e.Client()
	defer c.CloseIdleConnections()

	var seen strings.Builder
	codes := []string{}
	for _, id := range []string{"code", "longcode", "longmsg"} {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		last, err := e.load(ctx, c, id)
		cancel()
		if err != nil || last.Type != apitype.EventFailed || last.Error == nil || last.Error.Code != errcode.SessionTokenExpired {
			t.Fatalf("%s: %v %+v, want failed sessionTokenExpired", id, err, last)
		}
		codes = append(codes, fmt.Sprintf("%q", last.Error.ServerCode))
		raw, _ := json.Marshal(last)
		seen.Write(raw)
		out, errOut, _ := e.CLI("preload", id)
		seen.WriteString(out + errOut)
		out, errOut, _ = e.CLI("preload", "--json", id)
		seen.WriteString(out + errOut)
	}
	p.Stop()
	seen.WriteString(p.Stderr.String())
	if !strings.Contains(p.Stderr.String(), "level=DEBUG") {
		t.Error("the daemon's log has no debug lines: the search proves little")
	}
	all := seen.String()
	for i := 0; i+8 <= len(secret); i++ {
		if j := strings.Index(all, secret[i:i+8]); j >= 0 {
			t.Fatalf("bytes %d-%d of the token appear: ...%s...", i, i+8, all[max(0, j-100):min(len(all), j+50)])
		}
	}
	secTable.add(t, "the origin answers 401 echoing the token: as the error code, as a code of 50 chars + the token (across the 64-char bound), in a message of 500 chars + the token (across the 512-byte bound)",
		fmt.Sprintf("no 8 bytes of the token in %d KiB searched (failed events, `assetd preload` and `--json` output, the debug log); serverCodes %s", seen.Len()/1024, strings.Join(codes, ", ")))
}
