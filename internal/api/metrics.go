package api

import (
	"bytes"
	"net/http"
	"slices"
	"strconv"

	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/version"
)

// metrics answers GET /metrics on the socket. The TCP listener of
// metrics.listen (ServeMetrics) answers with the same writer.
func (s *Server) metrics(w http.ResponseWriter, r *http.Request, _ string) {
	s.writeMetrics(w, r)
}

// snapshot is the figures of this moment: Options.Metrics, or the cache
// figures of Manager.Stats.
func (s *Server) snapshot() Metrics {
	if s.opts.Metrics != nil {
		return s.opts.Metrics()
	}
	st := s.m.Stats()
	return Metrics{CacheEntries: st.TotalEntries, CacheBytes: st.TotalSize, LoadsInFlight: st.LoadsInFlight}
}

// writeMetrics answers the Prometheus text exposition format (version
// 0.0.4), written by hand: a few dozen series need no library. A HEAD
// gets the headers only.
func (s *Server) writeMetrics(w http.ResponseWriter, r *http.Request) {
	b := AppendMetrics(nil, s.snapshot())
	h := w.Header()
	h["Content-Type"] = []string{"text/plain; version=0.0.4; charset=utf-8"}
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(b)
	}
}

// AppendMetrics appends m in the Prometheus text format to b. Every label
// value comes from a fixed set (results, states, sources, the error codes
// of internal/errs; anything else is "other"), so the number of series is
// bounded whatever callers ask for: no series names an avatar.
func AppendMetrics(b []byte, m Metrics) []byte {
	buf := bytes.NewBuffer(b)
	family(buf, "assetd_build_info", "gauge", "Always 1; the version label names the build.")
	buf.WriteString(`assetd_build_info{version="` + labelEscape(version.Version) + `"} 1` + "\n")

	family(buf, "assetd_loads_total", "counter", "Loads finished, by result and error code.")
	buf.WriteString(`assetd_loads_total{result="ok"} ` + strconv.FormatUint(m.LoadsByResult["ok"], 10) + "\n")
	failed := map[string]uint64{}
	for c, n := range m.LoadsByResult {
		if c != "ok" {
			failed[codeLabel(c)] += n
		}
	}
	for _, c := range sortedKeys(failed) {
		buf.WriteString(`assetd_loads_total{result="failed",code="` + c + `"} ` + strconv.FormatUint(failed[c], 10) + "\n")
	}

	family(buf, "assetd_downloaded_bytes_total", "counter", "Blob bytes downloaded, by source: origin.url (or a URL a manifest names) or one of origin.mirrors (a site cache).")
	mirror := min(m.BytesFromMirrors, m.BytesDownloaded)
	buf.WriteString(`assetd_downloaded_bytes_total{source="origin"} ` + strconv.FormatUint(m.BytesDownloaded-mirror, 10) + "\n")
	buf.WriteString(`assetd_downloaded_bytes_total{source="mirror"} ` + strconv.FormatUint(mirror, 10) + "\n")
	family(buf, "assetd_site_cache_bytes_total", "counter", "Blob bytes whose answer carried a site cache's X-Cache-Status, by result: hit (from its disk) or miss (fetched upstream).")
	buf.WriteString(`assetd_site_cache_bytes_total{result="hit"} ` + strconv.FormatUint(m.BytesCacheHit, 10) + "\n")
	buf.WriteString(`assetd_site_cache_bytes_total{result="miss"} ` + strconv.FormatUint(m.BytesCacheMiss, 10) + "\n")
	sample(buf, "assetd_http_retries_total", "counter", "HTTP requests to origins that were retries.", strconv.FormatUint(m.Retries, 10))
	sample(buf, "assetd_http_requests_total", "counter", "HTTP requests to origins, retries included.", strconv.FormatUint(m.Requests, 10))

	sample(buf, "assetd_cache_entries", "gauge", "Avatars in the cache.", strconv.Itoa(m.CacheEntries))
	sample(buf, "assetd_cache_bytes", "gauge", "Bytes of distinct files in the cache.", strconv.FormatInt(m.CacheBytes, 10))
	family(buf, "assetd_avatars", "gauge", "Cached avatars by state: ready, stale (due for revalidation) or damaged (files missing or corrupt).")
	ready := max(m.CacheEntries-m.Stale-m.Damaged, 0)
	buf.WriteString(`assetd_avatars{state="ready"} ` + strconv.Itoa(ready) + "\n")
	buf.WriteString(`assetd_avatars{state="stale"} ` + strconv.Itoa(m.Stale) + "\n")
	buf.WriteString(`assetd_avatars{state="damaged"} ` + strconv.Itoa(m.Damaged) + "\n")
	if m.DiskFreeKnown {
		sample(buf, "assetd_disk_free_above_reserve_bytes", "gauge", "Free bytes on the store's file system above store.reserve_bytes (negative: below it).", strconv.FormatInt(m.DiskFreeAboveReserve, 10))
	}
	sample(buf, "assetd_loads_in_flight", "gauge", "Loads running now.", strconv.Itoa(m.LoadsInFlight))

	sample(buf, "assetd_preload_avatars", "gauge", "Avatars on the preload list.", strconv.Itoa(m.PreloadAvatars))
	family(buf, "assetd_preload_failing_avatars", "gauge", "Preload-list avatars whose latest load or refresh failed, by error code.")
	failing := map[string]uint64{}
	for c, n := range m.PreloadFailing {
		failing[codeLabel(c)] += uint64(n)
	}
	for _, c := range sortedKeys(failing) {
		buf.WriteString(`assetd_preload_failing_avatars{code="` + c + `"} ` + strconv.FormatUint(failing[c], 10) + "\n")
	}
	family(buf, "assetd_background_held", "gauge", "1 while periodic refreshes are held, by reason: metered (a metered link) or outside_window (outside every preload.refresh_window).")
	buf.WriteString(`assetd_background_held{reason="metered"} ` + boolValue(m.HeldMetered) + "\n")
	buf.WriteString(`assetd_background_held{reason="outside_window"} ` + boolValue(m.HeldOutsideWindow) + "\n")
	if !m.RefreshLastSuccess.IsZero() {
		sample(buf, "assetd_refresh_last_success_timestamp_seconds", "gauge",
			"Unix time since which every preload-list avatar cached from the origin has been confirmed by it (the oldest of their last successful refreshes).",
			strconv.FormatInt(m.RefreshLastSuccess.Unix(), 10))
	}
	return buf.Bytes()
}

func boolValue(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// codeLabel is c when it is one of the error codes of internal/errs, else
// "other": a label value never comes from outside that set.
func codeLabel(c string) string {
	if errcode.Code(c).Known() {
		return c
	}
	return "other"
}

func sortedKeys(m map[string]uint64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
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
