package reliability

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/assetd/assetd/internal/testkit"
)

// TestHostileRangesAndPublishInput: `assetd origin` asked for 15,000
// ranges of one blob answers 200 with the blob, not a multipart answer
// many times its size; `assetd publish` refuses a 5 GiB sparse file on
// its size (exit 2, nothing written) and quotes a file name holding
// terminal escape sequences.
func TestHostileRangesAndPublishInput(t *testing.T) {
	dir := t.TempDir()
	src, site := filepath.Join(dir, "src"), filepath.Join(dir, "site")
	data := bytes.Repeat([]byte("0123456789abcdef"), 4096)
	write := func(path string, b []byte) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(src, "kiosk", "a.bin"), data)
	write(filepath.Join(src, "notes\x1b]0;owned\x07\x1b[2J.txt"), []byte("x"))
	out, err := exec.Command(bin, "publish", "--version", "1", src, site).CombinedOutput()
	if err != nil {
		t.Fatalf("publish: %v\n%s", err, out)
	}
	var results []string
	if bytes.ContainsAny(out, "\x1b\x07") || !bytes.Contains(out, []byte(`\x1b`)) {
		t.Errorf("publish printed a raw control character or not the escaped name: %q", out)
	} else {
		results = append(results, "a file name with OSC and CSI escape sequences is printed quoted")
	}

	url := testkit.StartOriginCmd(t, site, waitLimit)
	sum := sha256.Sum256(data)
	req, _ := http.NewRequest("GET", url+"/v1/blobs/sha256/"+hex.EncodeToString(sum[:]), nil)
	req.Header.Set("Range", "bytes="+strings.TrimSuffix(strings.Repeat("0-0,", 15000), ","))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || n != int64(len(data)) {
		t.Errorf("15000 ranges: status %d, %d bytes; want 200 and the blob's %d", resp.StatusCode, n, len(data))
	} else {
		results = append(results, fmt.Sprintf("15,000 `0-0` ranges of a 64 KiB blob: 200, %d bytes", n))
	}

	huge := filepath.Join(dir, "src2", "big", "huge.bin")
	write(huge, nil)
	if err := os.Truncate(huge, 5<<30); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(bin, "publish", "--version", "1", filepath.Join(dir, "src2"), filepath.Join(dir, "site2")).CombinedOutput()
	var ee *exec.ExitError
	_, serr := os.Stat(filepath.Join(dir, "site2"))
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !bytes.Contains(out, []byte("more than an asset may be")) || !errors.Is(serr, os.ErrNotExist) {
		t.Errorf("publish of a 5 GiB file: %v, %q, site2: %v; want exit 2 on its size and nothing written", err, out, serr)
	} else {
		results = append(results, "a 5 GiB sparse file: exit 2 on its size, before hashing, nothing written")
	}
	secTable.add(t, "`assetd origin`: a Range of 15,000 ranges; `assetd publish`: a 5 GiB sparse file, a file name with terminal escapes",
		strings.Join(results, "; "))
}
