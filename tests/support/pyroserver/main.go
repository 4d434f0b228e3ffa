// pyroserver: a stand-in for a Pyroscope server, for Ember's protocol,
// fault and benchmark tests. It decodes what the agent sends the way
// Pyroscope does, records every request and profile, and can be told to
// misbehave.
//
// Endpoints (over HTTP, or HTTPS with -tls-cert/-tls-key, and mTLS with
// -client-ca):
//
//	POST /push.v1.PusherService/Push  Connect unary protocol, binary
//	     protobuf push.v1.PushRequest (gzip Content-Encoding accepted);
//	     answers an empty PushResponse, or a Connect error as JSON
//	     {"code": ..., "message": ...} with the matching HTTP status.
//	POST /ingest?name=app.cpu{k=v}&from&until&format=pprof&...  the legacy
//	     API: the name is parsed by the same rules as Pyroscope's label set
//	     parser, from/until as Pyroscope reads them, the body as (gzip) pprof.
//	POST /v1development/profiles  OpenTelemetry profiles (OTLP/HTTP,
//	     protobuf ExportProfilesServiceRequest, gzip accepted), read as
//	     Pyroscope reads them; answers an empty ExportProfilesServiceResponse.
//	GET  /control?mode=ok|status|hang|close[&code=500][&retry_after=2]
//	     [&message=...][&n=K]  changes how the two endpoints above answer:
//	     status replies with `code`; hang reads the request and never
//	     answers; close drops the connection mid-request. With n, the mode
//	     lasts K requests and then reverts to ok.
//
// Records go to -records, one line per event, as key="value" pairs with
// Go-quoted values:
//
//	event="request" seq path status mode auth tenant content_type
//	      content_encoding connect_version user_agent headers query
//	      body_bytes tls_client error unix_ms
//	event="profile" seq api labels id samples cpu_ns sample_types
//	      period_type period time_nanos duration_nanos from until name
//	      spy_name sample_rate units aggregation format file gzip
//
// labels is canonical: {a="1", b="2"}, sorted, values Go-quoted.
package main

import (
	"bytes"
	"compress/gzip"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"embertest/otlppb"
	"embertest/pb"

	"google.golang.org/protobuf/proto"
)

type server struct {
	mu      sync.Mutex
	records *os.File
	saveDir string
	seq     int

	mode       string
	code       int
	retryAfter string
	message    string
	remaining  int // requests left in the mode; <0: until changed
}

type fields []string

func (f *fields) add(k string, v interface{}) {
	*f = append(*f, k+"="+strconv.Quote(fmt.Sprint(v)))
}

func (s *server) record(f fields) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.records != nil {
		s.records.WriteString(strings.Join(f, " ") + "\n")
	}
}

func (s *server) nextSeq() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	return s.seq
}

// takeMode returns the mode for this request and counts it down.
func (s *server) takeMode() (mode string, code int, retryAfter, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	mode, code, retryAfter, message = s.mode, s.code, s.retryAfter, s.message
	if s.remaining > 0 {
		s.remaining--
		if s.remaining == 0 {
			s.mode = "ok"
		}
	}
	return
}

func (s *server) control(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	mode := q.Get("mode")
	switch mode {
	case "ok", "status", "hang", "close":
	default:
		http.Error(w, "mode must be ok, status, hang or close", http.StatusBadRequest)
		return
	}
	code, _ := strconv.Atoi(q.Get("code"))
	if mode == "status" && (code < 100 || code > 599) {
		http.Error(w, "status mode needs code", http.StatusBadRequest)
		return
	}
	n := -1
	if v := q.Get("n"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	s.mu.Lock()
	s.mode, s.code, s.retryAfter, s.message, s.remaining = mode, code, q.Get("retry_after"), q.Get("message"), n
	s.mu.Unlock()
	fmt.Fprintln(w, "ok")
}

// --- the label set parser of Pyroscope's /ingest -----------------------------

func serviceNameRuneOK(r rune) bool {
	return r == '-' || r == '.' || r == '/' || labelNameRuneOK(r)
}

func labelNameRuneOK(r rune) bool {
	return (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') || r == '_' || r == '.'
}

// parseIngestName reads "app{k=v,...}" with the same state machine as
// Pyroscope: no escapes; pairs end at ',' or '}'; keys and values trimmed.
func parseIngestName(name string) (map[string]string, error) {
	const (
		inName = iota
		inKey
		inValue
		done
	)
	labels := map[string]string{}
	state := inName
	var key, value strings.Builder
	for _, r := range name + "{" {
		switch state {
		case inName:
			if r == '{' {
				app := strings.TrimSpace(value.String())
				if app == "" {
					return nil, errors.New("service name is required")
				}
				for _, c := range app {
					if !serviceNameRuneOK(c) {
						return nil, fmt.Errorf("invalid service name: %s: character is not allowed: %q", app, c)
					}
				}
				labels["__name__"] = app
				state = inKey
			} else {
				value.WriteRune(r)
			}
		case inKey:
			switch r {
			case '}':
				state = done
			case '=':
				state = inValue
				value.Reset()
			default:
				key.WriteRune(r)
			}
		case inValue:
			switch r {
			case ',', '}':
				state = inKey
				k := strings.TrimSpace(key.String())
				if k != "__name__" {
					if k == "" {
						return nil, errors.New("label name is required")
					}
					for _, c := range k {
						if !labelNameRuneOK(c) {
							return nil, fmt.Errorf("invalid label name: %s: character is not allowed: %q", k, c)
						}
					}
				}
				labels[k] = strings.TrimSpace(value.String())
				key.Reset()
			default:
				value.WriteRune(r)
			}
		}
	}
	return labels, nil
}

var digitsOnly = regexp.MustCompile(`^\d+$`)

// parseAttime reads from/until as Pyroscope does for numbers: 8 digits a
// date, 13 milliseconds, 16 microseconds, 19 nanoseconds, else seconds.
func parseAttime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if !digitsOnly.MatchString(s) {
		return time.Time{}, fmt.Errorf("not a Unix time: %q", s)
	}
	if len(s) == 8 {
		if t, err := time.Parse("20060102", s); err == nil && t.Year() > 1900 {
			return t, nil
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	switch len(s) {
	case 13:
		return time.UnixMilli(v), nil
	case 16:
		return time.UnixMicro(v), nil
	case 19:
		return time.Unix(0, v), nil
	}
	return time.Unix(v, 0), nil
}

func canonical(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+strconv.Quote(labels[k]))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// --- pprof ---------------------------------------------------------------------

type pprofSummary struct {
	samples, cpuNs          int64
	sampleTypes, periodType string
	period                  int64
	timeNanos, durationNano int64
	gzipped                 bool
}

// decodePprof reads a profile as Pyroscope does: gzip if the magic says so,
// then the protobuf.
func decodePprof(raw []byte) (*pprofSummary, error) {
	sum := &pprofSummary{}
	data := raw
	if len(raw) >= 2 && raw[0] == 0x1f && raw[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		if data, err = io.ReadAll(zr); err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		sum.gzipped = true
	}
	var p pb.Profile
	if err := proto.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("pprof: %w", err)
	}
	st := p.StringTable
	if len(st) == 0 || st[0] != "" {
		return nil, errors.New("pprof: string_table[0] must be empty")
	}
	str := func(i int64) string {
		if i < 0 || int(i) >= len(st) {
			return "?"
		}
		return st[i]
	}
	var types []string
	cpuIdx, countIdx := -1, -1
	for i, t := range p.SampleType {
		name := str(t.Type) + "/" + str(t.Unit)
		types = append(types, name)
		if name == "cpu/nanoseconds" {
			cpuIdx = i
		}
		if name == "samples/count" {
			countIdx = i
		}
	}
	sum.sampleTypes = strings.Join(types, ",")
	if p.PeriodType != nil {
		sum.periodType = str(p.PeriodType.Type) + "/" + str(p.PeriodType.Unit)
	}
	sum.period = p.Period
	sum.timeNanos = p.TimeNanos
	sum.durationNano = p.DurationNanos
	for _, s := range p.Sample {
		if len(s.Value) != len(p.SampleType) {
			return nil, errors.New("pprof: a sample's value count differs from sample_type's")
		}
		if countIdx >= 0 {
			sum.samples += s.Value[countIdx]
		}
		if cpuIdx >= 0 {
			sum.cpuNs += s.Value[cpuIdx]
		}
	}
	return sum, nil
}

func (s *server) save(seq, n int, raw []byte) string {
	if s.saveDir == "" {
		return ""
	}
	path := filepath.Join(s.saveDir, fmt.Sprintf("%d-%d.pb.gz", seq, n))
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		return ""
	}
	return path
}

// --- request handling ----------------------------------------------------------

var connectCodes = map[int]string{
	400: "invalid_argument", 401: "unauthenticated", 403: "permission_denied",
	404: "not_found", 408: "deadline_exceeded", 409: "aborted", 413: "resource_exhausted",
	429: "resource_exhausted", 500: "internal", 501: "unimplemented", 503: "unavailable",
	504: "deadline_exceeded",
}

func connectError(w http.ResponseWriter, status int, message string) {
	code, ok := connectCodes[status]
	if !ok {
		code = "unknown"
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"code": code, "message": message})
}

var labelNameRe = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

func (s *server) handle(w http.ResponseWriter, r *http.Request) {
	seq := s.nextSeq()
	isPush := r.URL.Path == "/push.v1.PusherService/Push"
	isOtlp := r.URL.Path == "/v1development/profiles"
	mode, code, retryAfter, message := s.takeMode()

	req := fields{}
	req.add("event", "request")
	req.add("seq", seq)
	req.add("unix_ms", time.Now().UnixMilli())
	req.add("path", r.URL.Path)
	req.add("method", r.Method)
	req.add("mode", mode)
	req.add("auth", r.Header.Get("Authorization"))
	req.add("tenant", r.Header.Get("X-Scope-OrgID"))
	req.add("content_type", r.Header.Get("Content-Type"))
	req.add("content_encoding", r.Header.Get("Content-Encoding"))
	req.add("connect_version", r.Header.Get("Connect-Protocol-Version"))
	req.add("user_agent", r.UserAgent())
	var extra []string
	for k, v := range r.Header {
		if strings.HasPrefix(k, "X-") && k != "X-Scope-Orgid" {
			extra = append(extra, k+"="+strings.Join(v, ","))
		}
	}
	sort.Strings(extra)
	req.add("headers", strings.Join(extra, ";"))
	req.add("query", r.URL.RawQuery)
	tlsClient := ""
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		tlsClient = r.TLS.PeerCertificates[0].Subject.CommonName
	}
	req.add("tls_client", tlsClient)

	if mode == "close" {
		// Drop the connection mid-request: the body is still unread.
		req.add("status", "closed")
		s.record(req)
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}

	body, err := io.ReadAll(r.Body)
	req.add("body_bytes", len(body))
	if err != nil {
		req.add("status", 408)
		req.add("error", err.Error())
		s.record(req)
		return
	}
	if mode == "hang" {
		req.add("status", "hang")
		s.record(req)
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Minute):
		}
		return
	}
	if mode == "status" {
		req.add("status", code)
		s.record(req)
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		if message == "" {
			message = fmt.Sprintf("injected failure %d", code)
		}
		if isPush {
			connectError(w, code, message)
		} else {
			http.Error(w, message, code)
		}
		return
	}

	var profiles []fields
	var status int
	var failure string
	switch {
	case isPush:
		profiles, status, failure = s.decodePush(r, body, seq)
	case isOtlp:
		profiles, status, failure = s.decodeOtlp(r, body, seq)
	default:
		profiles, status, failure = s.decodeIngest(r, body, seq)
	}
	req.add("status", status)
	req.add("error", failure)
	s.record(req)
	if status != 200 {
		if isPush {
			connectError(w, status, failure)
		} else {
			http.Error(w, failure, status)
		}
		return
	}
	for _, p := range profiles {
		s.record(p)
	}
	switch {
	case isPush:
		w.Header().Set("Content-Type", "application/proto")
		out, _ := proto.Marshal(&pb.PushResponse{})
		w.Write(out)
	case isOtlp:
		w.Header().Set("Content-Type", "application/x-protobuf")
		out, _ := proto.Marshal(&otlppb.ExportProfilesServiceResponse{})
		w.Write(out)
	default:
		w.WriteHeader(200)
	}
}

func (s *server) decodePush(r *http.Request, body []byte, seq int) ([]fields, int, string) {
	if r.Method != http.MethodPost {
		return nil, 405, "POST only"
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/proto" {
		return nil, 415, fmt.Sprintf("content type %q: only application/proto", ct)
	}
	if v := r.Header.Get("Connect-Protocol-Version"); v != "" && v != "1" {
		return nil, 400, fmt.Sprintf("connect protocol version %q", v)
	}
	body, _, status, msg := decodeContentEncoding(r, body, 501)
	if status != 0 {
		return nil, status, msg
	}
	var pr pb.PushRequest
	if err := proto.Unmarshal(body, &pr); err != nil {
		return nil, 400, "PushRequest: " + err.Error()
	}
	if len(pr.Series) == 0 {
		return nil, 400, "no profiles received"
	}
	var out []fields
	n := 0
	for _, series := range pr.Series {
		labels := map[string]string{}
		prev := ""
		sorted := true
		for _, l := range series.Labels {
			if !labelNameRe.MatchString(l.Name) {
				return nil, 400, fmt.Sprintf("invalid label name %q", l.Name)
			}
			if !utf8.ValidString(l.Value) {
				return nil, 400, fmt.Sprintf("label %s: invalid UTF-8", l.Name)
			}
			if _, dup := labels[l.Name]; dup {
				return nil, 400, fmt.Sprintf("duplicate label name %q", l.Name)
			}
			if l.Name < prev {
				sorted = false
			}
			prev = l.Name
			labels[l.Name] = l.Value
		}
		if labels["__name__"] == "" {
			return nil, 400, "a series has no __name__"
		}
		for _, sample := range series.Samples {
			sum, err := decodePprof(sample.RawProfile)
			if err != nil {
				return nil, 400, err.Error()
			}
			n++
			f := fields{}
			f.add("event", "profile")
			f.add("seq", seq)
			f.add("api", "push")
			f.add("labels", canonical(labels))
			f.add("labels_sorted", sorted)
			f.add("id", sample.ID)
			addSummary(&f, sum)
			f.add("file", s.save(seq, n, sample.RawProfile))
			out = append(out, f)
		}
	}
	return out, 200, ""
}

func (s *server) decodeIngest(r *http.Request, body []byte, seq int) ([]fields, int, string) {
	if r.Method != http.MethodPost {
		return nil, 405, "POST only"
	}
	q := r.URL.Query()
	labels, err := parseIngestName(q.Get("name"))
	if err != nil {
		return nil, 400, "name: " + err.Error()
	}
	from, err := parseAttime(q.Get("from"))
	if err != nil {
		return nil, 400, "from: " + err.Error()
	}
	until, err := parseAttime(q.Get("until"))
	if err != nil {
		return nil, 400, "until: " + err.Error()
	}
	if q.Get("format") != "pprof" {
		return nil, 400, fmt.Sprintf("format %q: this server reads only pprof", q.Get("format"))
	}
	sum, err := decodePprof(body)
	if err != nil {
		return nil, 422, err.Error()
	}
	f := fields{}
	f.add("event", "profile")
	f.add("seq", seq)
	f.add("api", "ingest")
	f.add("labels", canonical(labels))
	f.add("name", q.Get("name"))
	f.add("from", from.Unix())
	f.add("until", until.Unix())
	f.add("spy_name", q.Get("spyName"))
	f.add("sample_rate", q.Get("sampleRate"))
	f.add("units", q.Get("units"))
	f.add("aggregation", q.Get("aggregationType"))
	f.add("format", q.Get("format"))
	addSummary(&f, sum)
	f.add("file", s.save(seq, 1, body))
	return []fields{f}, 200, ""
}

// --- OTLP profiles -------------------------------------------------------------

// decodeOtlp reads POST /v1development/profiles as Grafana Pyroscope does
// (pkg/ingester/otlp): exactly application/x-protobuf or
// application/protobuf, gzip Content-Encoding, an ExportProfilesServiceRequest
// whose dictionary tables start with their empty entry and whose indexes are
// all in range. Each profile becomes one record: service_name from the
// resource's service.name, every string or int resource attribute as a
// label (dots kept), and the profile's name as Pyroscope derives it
// (samples/count with a cpu/nanoseconds period is process_cpu, its values
// times the period). The profile is also saved as pprof, so `go tool pprof`
// can read what the agent sent.
// decodeContentEncoding undoes a request's Content-Encoding (identity or
// gzip). It returns the body, whether it was gzipped, and for a bad body or an
// unknown encoding a non-zero HTTP status with its message. Connect answers an
// unknown encoding with 501 and the OTLP/HTTP spec with 415, hence the
// parameter.
func decodeContentEncoding(r *http.Request, body []byte, unknownStatus int) ([]byte, bool, int, string) {
	switch enc := r.Header.Get("Content-Encoding"); enc {
	case "", "identity":
		return body, false, 0, ""
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, false, 400, "gzip: " + err.Error()
		}
		out, err := io.ReadAll(zr)
		if err != nil {
			return nil, false, 400, "gzip: " + err.Error()
		}
		return out, true, 0, ""
	default:
		return nil, false, unknownStatus, fmt.Sprintf("content encoding %q", enc)
	}
}

func (s *server) decodeOtlp(r *http.Request, body []byte, seq int) ([]fields, int, string) {
	if r.Method != http.MethodPost {
		return nil, 405, "POST only"
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-protobuf" && ct != "application/protobuf" {
		return nil, 415, fmt.Sprintf("content type %q: only application/x-protobuf", ct)
	}
	body, gzipped, status, msg := decodeContentEncoding(r, body, 415)
	if status != 0 {
		return nil, status, msg
	}
	var req otlppb.ExportProfilesServiceRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		return nil, 400, "ExportProfilesServiceRequest: " + err.Error()
	}
	d := req.Dictionary
	if d == nil {
		return nil, 400, "missing dictionary"
	}
	if len(req.ResourceProfiles) == 0 {
		return nil, 400, "no resource profiles"
	}
	if err := checkDictionary(d); err != nil {
		return nil, 400, err.Error()
	}
	str := func(i int32) string { return d.StringTable[i] }
	var out []fields
	n := 0
	for _, rp := range req.ResourceProfiles {
		labels := map[string]string{"__otel__": "true"}
		if rp.Resource != nil {
			for _, kv := range rp.Resource.Attributes {
				if v, ok := anyString(kv.Value); ok {
					labels[kv.Key] = v
				}
			}
		}
		service := labels["service.name"]
		if service == "" {
			service = "unknown_service"
		}
		labels["service_name"] = service
		for _, sp := range rp.ScopeProfiles {
			for _, p := range sp.Profiles {
				if p.SampleType == nil {
					return nil, 400, "a profile has no sample_type"
				}
				sampleType := str(p.SampleType.TypeStrindex) + "/" + str(p.SampleType.UnitStrindex)
				periodType := ""
				if p.PeriodType != nil {
					periodType = str(p.PeriodType.TypeStrindex) + "/" + str(p.PeriodType.UnitStrindex)
				}
				name := ""
				cpu := false
				switch {
				case sampleType == "samples/count" && periodType == "cpu/nanoseconds":
					name, cpu = "process_cpu", true
				case sampleType == "off_cpu/nanoseconds":
					name = "off_cpu"
				case p.PeriodType != nil:
					name = str(p.PeriodType.TypeStrindex)
				}
				if name == "" {
					return nil, 400, "a profile without a name (no period type)"
				}
				labels["__name__"] = name
				var samples, valueNs int64
				frameTypes := map[string]int64{}
				for _, smp := range p.Samples {
					if len(smp.Values) != 1 {
						return nil, 400, fmt.Sprintf("sample values length mismatch: %d", len(smp.Values))
					}
					if int(smp.StackIndex) >= len(d.StackTable) || smp.StackIndex < 0 {
						return nil, 400, fmt.Sprintf("stack index %d out of range", smp.StackIndex)
					}
					for _, a := range smp.AttributeIndices {
						if int(a) >= len(d.AttributeTable) || a < 0 {
							return nil, 400, fmt.Sprintf("attribute index %d out of range", a)
						}
					}
					if cpu {
						samples += smp.Values[0]
						valueNs += smp.Values[0] * p.Period
					} else {
						samples++
						valueNs += smp.Values[0]
					}
					for _, li := range d.StackTable[smp.StackIndex].LocationIndices {
						for _, a := range d.LocationTable[li].AttributeIndices {
							kv := d.AttributeTable[a]
							if str(kv.KeyStrindex) == "profile.frame.type" {
								t, _ := anyString(kv.Value)
								frameTypes[t]++
							}
						}
					}
				}
				raw, err := otlpToPprof(d, p, cpu)
				if err != nil {
					return nil, 400, err.Error()
				}
				n++
				f := fields{}
				f.add("event", "profile")
				f.add("seq", seq)
				f.add("api", "otlp")
				f.add("labels", canonical(labels))
				f.add("id", fmt.Sprintf("%x", p.ProfileId))
				f.add("scope", sp.GetScope().GetName()+"/"+sp.GetScope().GetVersion())
				f.add("samples", samples)
				f.add("cpu_ns", valueNs)
				f.add("sample_types", sampleType)
				f.add("period_type", periodType)
				f.add("period", p.Period)
				f.add("time_nanos", int64(p.TimeUnixNano))
				f.add("duration_nanos", int64(p.DurationNano))
				f.add("frame_types", canonicalCounts(frameTypes))
				f.add("gzip", gzipped)
				f.add("file", s.save(seq, n, raw))
				out = append(out, f)
			}
		}
	}
	return out, 200, ""
}

func anyString(v *otlppb.AnyValue) (string, bool) {
	if v == nil {
		return "", false
	}
	switch x := v.Value.(type) {
	case *otlppb.AnyValue_StringValue:
		return x.StringValue, true
	case *otlppb.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10), true
	}
	return "", false
}

func canonicalCounts(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, ",")
}

// checkDictionary enforces the protocol's table rules: index 0 of every
// table is its empty entry, and every index points inside its table.
func checkDictionary(d *otlppb.ProfilesDictionary) error {
	if len(d.StringTable) == 0 || d.StringTable[0] != "" {
		return errors.New("string_table[0] must be empty")
	}
	empty := func(name string, n int, first proto.Message) error {
		if n == 0 {
			return fmt.Errorf("%s has no entry 0", name)
		}
		if proto.Size(first) != 0 {
			return fmt.Errorf("%s[0] is not empty", name)
		}
		return nil
	}
	if len(d.MappingTable) == 0 || len(d.LocationTable) == 0 || len(d.FunctionTable) == 0 ||
		len(d.StackTable) == 0 || len(d.AttributeTable) == 0 {
		return errors.New("a dictionary table has no entry 0")
	}
	for _, e := range []error{
		empty("mapping_table", len(d.MappingTable), d.MappingTable[0]),
		empty("location_table", len(d.LocationTable), d.LocationTable[0]),
		empty("function_table", len(d.FunctionTable), d.FunctionTable[0]),
		empty("stack_table", len(d.StackTable), d.StackTable[0]),
		empty("attribute_table", len(d.AttributeTable), d.AttributeTable[0]),
	} {
		if e != nil {
			return e
		}
	}
	ns := int32(len(d.StringTable))
	inStrings := func(i int32) bool { return i >= 0 && i < ns }
	for _, m := range d.MappingTable {
		if !inStrings(m.FilenameStrindex) {
			return errors.New("mapping filename out of range")
		}
	}
	for _, f := range d.FunctionTable {
		if !inStrings(f.NameStrindex) || !inStrings(f.SystemNameStrindex) || !inStrings(f.FilenameStrindex) {
			return errors.New("function string index out of range")
		}
	}
	for _, l := range d.LocationTable {
		if l.MappingIndex < 0 || int(l.MappingIndex) >= len(d.MappingTable) {
			return errors.New("location mapping index out of range")
		}
		for _, ln := range l.Lines {
			if ln.FunctionIndex < 0 || int(ln.FunctionIndex) >= len(d.FunctionTable) {
				return errors.New("line function index out of range")
			}
		}
		for _, a := range l.AttributeIndices {
			if a < 0 || int(a) >= len(d.AttributeTable) {
				return errors.New("location attribute index out of range")
			}
		}
	}
	for _, st := range d.StackTable {
		for _, li := range st.LocationIndices {
			if li <= 0 || int(li) >= len(d.LocationTable) {
				return fmt.Errorf("stack location index %d out of range", li)
			}
		}
	}
	for _, a := range d.AttributeTable {
		if !inStrings(a.KeyStrindex) {
			return errors.New("attribute key out of range")
		}
	}
	return nil
}

// otlpToPprof turns one OTLP profile into a gzipped pprof, as Pyroscope
// stores it: CPU as samples/count and cpu/nanoseconds (count x period), a
// measured event as its own type; pid and thread name as sample labels.
func otlpToPprof(d *otlppb.ProfilesDictionary, p *otlppb.Profile, cpu bool) ([]byte, error) {
	out := &pb.Profile{StringTable: []string{""}}
	strs := map[string]int64{"": 0}
	str := func(v string) int64 {
		if i, ok := strs[v]; ok {
			return i
		}
		i := int64(len(out.StringTable))
		out.StringTable = append(out.StringTable, v)
		strs[v] = i
		return i
	}
	ostr := func(i int32) string { return d.StringTable[i] }
	periodType := ostr(p.PeriodType.GetTypeStrindex())
	periodUnit := ostr(p.PeriodType.GetUnitStrindex())
	if cpu {
		out.SampleType = []*pb.ValueType{{Type: str("samples"), Unit: str("count")}, {Type: str("cpu"), Unit: str("nanoseconds")}}
	} else {
		out.SampleType = []*pb.ValueType{{Type: str(ostr(p.SampleType.TypeStrindex)), Unit: str(ostr(p.SampleType.UnitStrindex))}}
	}
	out.PeriodType = &pb.ValueType{Type: str(periodType), Unit: str(periodUnit)}
	out.Period = p.Period
	out.TimeNanos = int64(p.TimeUnixNano)
	out.DurationNanos = int64(p.DurationNano)
	mappingIDs := map[int32]uint64{}
	functionIDs := map[int32]uint64{}
	locationIDs := map[int32]uint64{}
	for _, smp := range p.Samples {
		ps := &pb.Sample{}
		for _, li := range d.StackTable[smp.StackIndex].LocationIndices {
			id, ok := locationIDs[li]
			if !ok {
				loc := d.LocationTable[li]
				id = uint64(len(out.Location) + 1)
				pl := &pb.Location{Id: id, Address: loc.Address}
				if loc.MappingIndex > 0 {
					mid, ok := mappingIDs[loc.MappingIndex]
					if !ok {
						m := d.MappingTable[loc.MappingIndex]
						mid = uint64(len(out.Mapping) + 1)
						out.Mapping = append(out.Mapping, &pb.Mapping{Id: mid, MemoryStart: m.MemoryStart,
							MemoryLimit: m.MemoryLimit, FileOffset: m.FileOffset, Filename: str(ostr(m.FilenameStrindex)),
							HasFunctions: true})
						mappingIDs[loc.MappingIndex] = mid
					}
					pl.MappingId = mid
				}
				for _, ln := range loc.Lines {
					fid, ok := functionIDs[ln.FunctionIndex]
					if !ok {
						fn := d.FunctionTable[ln.FunctionIndex]
						fid = uint64(len(out.Function) + 1)
						out.Function = append(out.Function, &pb.Function{Id: fid, Name: str(ostr(fn.NameStrindex)),
							SystemName: str(ostr(fn.SystemNameStrindex)), Filename: str(ostr(fn.FilenameStrindex))})
						functionIDs[ln.FunctionIndex] = fid
					}
					pl.Line = append(pl.Line, &pb.Line{FunctionId: fid, Line: ln.Line})
				}
				out.Location = append(out.Location, pl)
				locationIDs[li] = id
			}
			ps.LocationId = append(ps.LocationId, id)
		}
		if cpu {
			ps.Value = []int64{smp.Values[0], smp.Values[0] * p.Period}
		} else {
			ps.Value = []int64{smp.Values[0]}
		}
		for _, a := range smp.AttributeIndices {
			kv := d.AttributeTable[a]
			switch ostr(kv.KeyStrindex) {
			case "process.pid":
				ps.Label = append(ps.Label, &pb.Label{Key: str("pid"), Num: kv.Value.GetIntValue()})
			case "thread.name":
				ps.Label = append(ps.Label, &pb.Label{Key: str("thread_name"), Str: str(kv.Value.GetStringValue())})
			}
		}
		out.Sample = append(out.Sample, ps)
	}
	raw, err := proto.Marshal(out)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(raw)
	zw.Close()
	return buf.Bytes(), nil
}

func addSummary(f *fields, sum *pprofSummary) {
	f.add("samples", sum.samples)
	f.add("cpu_ns", sum.cpuNs)
	f.add("sample_types", sum.sampleTypes)
	f.add("period_type", sum.periodType)
	f.add("period", sum.period)
	f.add("time_nanos", sum.timeNanos)
	f.add("duration_nanos", sum.durationNano)
	f.add("gzip", sum.gzipped)
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	addrFile := flag.String("addr-file", "", "write the bound address here once listening")
	records := flag.String("records", "", "append records to this file")
	saveDir := flag.String("save-dir", "", "save each accepted profile here")
	certFile := flag.String("tls-cert", "", "serve HTTPS with this certificate")
	keyFile := flag.String("tls-key", "", "and this key")
	clientCA := flag.String("client-ca", "", "require client certificates signed by this CA")
	mode := flag.String("mode", "ok", "initial mode")
	flag.Parse()

	s := &server{saveDir: *saveDir, mode: *mode, remaining: -1}
	if *records != "" {
		f, err := os.OpenFile(*records, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			log.Fatal(err)
		}
		s.records = f
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/control", s.control)
	mux.HandleFunc("/push.v1.PusherService/Push", s.handle)
	mux.HandleFunc("/ingest", s.handle)
	mux.HandleFunc("/v1development/profiles", s.handle)

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 30 * time.Second,
		ErrorLog: log.New(io.Discard, "", 0)}
	if *certFile != "" {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if *clientCA != "" {
			pem, err := os.ReadFile(*clientCA)
			if err != nil {
				log.Fatal(err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				log.Fatal("no certificate in ", *clientCA)
			}
			cfg.ClientCAs = pool
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
		srv.TLSConfig = cfg
	}
	if *addrFile != "" {
		tmp := *addrFile + ".tmp"
		os.WriteFile(tmp, []byte(ln.Addr().String()), 0o644)
		os.Rename(tmp, *addrFile)
	}
	go func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
		<-ch
		srv.Close()
	}()
	if *certFile != "" {
		err = srv.ServeTLS(ln, *certFile, *keyFile)
	} else {
		err = srv.Serve(ln)
	}
	if err != nil && err != http.ErrServerClosed {
		log.Fatal(err)
	}
}
