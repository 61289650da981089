package fetch

import (
	"net/http"
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	c := newClient(t, testConfig(""))
	lo, hi := 100*time.Millisecond, time.Second
	for attempt := 0; attempt < 70; attempt++ {
		step := hi
		if attempt < 4 {
			step = lo << attempt
		}
		for i := 0; i < 20; i++ {
			d := c.backoff(lo, hi, attempt, nil)
			if d < step/2 || d > step {
				t.Fatalf("attempt %d: %v outside [%v, %v]", attempt, d, step/2, step)
			}
		}
	}
	resp := &http.Response{StatusCode: 429, Header: http.Header{"Retry-After": {"2"}}}
	if d := c.backoff(lo, 5*time.Second, 0, resp); d != 2*time.Second {
		t.Errorf("Retry-After 2: %v", d)
	}
	if d := c.backoff(lo, time.Second, 0, resp); d != time.Second {
		t.Errorf("Retry-After is capped by the max: %v", d)
	}
}

func TestRetryAfterParse(t *testing.T) {
	future := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	tests := []struct {
		v      string
		ok     bool
		lo, hi time.Duration
	}{
		{"", false, 0, 0},
		{"3", true, 3 * time.Second, 3 * time.Second},
		{"-1", false, 0, 0},
		{"soon", false, 0, 0},
		{future, true, 80 * time.Second, 91 * time.Second},
		{"Mon, 01 Jan 2001 00:00:00 GMT", true, 0, 0},
	}
	for _, tt := range tests {
		d, ok := retryAfter(&http.Response{Header: http.Header{"Retry-After": {tt.v}}})
		if ok != tt.ok || d < tt.lo || d > tt.hi {
			t.Errorf("retryAfter(%q) = %v, %v", tt.v, d, ok)
		}
	}
}

func TestMaxAge(t *testing.T) {
	tests := map[string]time.Duration{
		"":                         0,
		"max-age=60":               time.Minute,
		"public, max-age=3600":     time.Hour,
		"max-age=60, no-cache":     0,
		"no-store":                 0,
		"max-age=abc":              0,
		`max-age="5"`:              5 * time.Second,
		"s-maxage=10, max-age=20 ": 20 * time.Second,
	}
	for v, want := range tests {
		if got := maxAge(http.Header{"Cache-Control": {v}}); got != want {
			t.Errorf("maxAge(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestRangeStart(t *testing.T) {
	tests := map[string]int64{"bytes 100-199/200": 100, "bytes 0-0/1": 0, "bytes */200": -1, "items 1-2/3": -1, "": -1}
	for v, want := range tests {
		got, ok := rangeStart(v)
		if !ok {
			got = -1
		}
		if got != want {
			t.Errorf("rangeStart(%q) = %d", v, got)
		}
	}
}
