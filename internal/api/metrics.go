package api

import (
	"bytes"
	"net/http"
	"slices"
	"strconv"
)

// metrics answers GET /metrics in the Prometheus text exposition format
// (version 0.0.4), written by hand: a handful of series need no library.
func (s *Server) metrics(w http.ResponseWriter, r *http.Request, _ string) {
	var m Metrics
	if s.opts.Metrics != nil {
		m = s.opts.Metrics()
	} else {
		st := s.m.Stats()
		m = Metrics{CacheEntries: st.TotalEntries, CacheBytes: st.TotalSize, LoadsInFlight: st.LoadsInFlight}
	}
	var b bytes.Buffer
	family(&b, "assetd_loads_total", "counter", "Loads finished, by result and error code.")
	b.WriteString(`assetd_loads_total{result="ok"} `)
	b.WriteString(strconv.FormatUint(m.LoadsByResult["ok"], 10))
	b.WriteByte('\n')
	codes := make([]string, 0, len(m.LoadsByResult))
	for c := range m.LoadsByResult {
		if c != "ok" {
			codes = append(codes, c)
		}
	}
	slices.Sort(codes)
	for _, c := range codes {
		b.WriteString(`assetd_loads_total{result="failed",code="`)
		b.WriteString(labelEscape(c))
		b.WriteString(`"} `)
		b.WriteString(strconv.FormatUint(m.LoadsByResult[c], 10))
		b.WriteByte('\n')
	}
	sample(&b, "assetd_downloaded_bytes_total", "counter", "Bytes downloaded from origins.", strconv.FormatUint(m.BytesDownloaded, 10))
	sample(&b, "assetd_http_retries_total", "counter", "HTTP requests to origins that were retries.", strconv.FormatUint(m.Retries, 10))
	sample(&b, "assetd_http_requests_total", "counter", "HTTP requests to origins, retries included.", strconv.FormatUint(m.Requests, 10))
	sample(&b, "assetd_cache_entries", "gauge", "Avatars in the cache.", strconv.Itoa(m.CacheEntries))
	sample(&b, "assetd_cache_bytes", "gauge", "Bytes of distinct files in the cache.", strconv.FormatInt(m.CacheBytes, 10))
	sample(&b, "assetd_loads_in_flight", "gauge", "Loads running now.", strconv.Itoa(m.LoadsInFlight))

	h := w.Header()
	h["Content-Type"] = []string{"text/plain; version=0.0.4; charset=utf-8"}
	h["Content-Length"] = []string{strconv.Itoa(b.Len())}
	w.WriteHeader(http.StatusOK)
	w.Write(b.Bytes())
}

func family(b *bytes.Buffer, name, typ, help string) {
	b.WriteString("# HELP " + name + " " + help + "\n# TYPE " + name + " " + typ + "\n")
}

func sample(b *bytes.Buffer, name, typ, help, value string) {
	family(b, name, typ, help)
	b.WriteString(name + " " + value + "\n")
}

// labelEscape escapes a label value as the text format requires.
func labelEscape(v string) string {
	var b bytes.Buffer
	for _, c := range []byte(v) {
		switch c {
		case '\\':
			b.WriteString(`\\`)
		case '"':
			b.WriteString(`\"`)
		case '\n':
			b.WriteString(`\n`)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
