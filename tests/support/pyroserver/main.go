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
	if isPush {
		profiles, status, failure = s.decodePush(r, body, seq)
	} else {
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
	if isPush {
		w.Header().Set("Content-Type", "application/proto")
		out, _ := proto.Marshal(&pb.PushResponse{})
		w.Write(out)
	} else {
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
	switch enc := r.Header.Get("Content-Encoding"); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, 400, "gzip: " + err.Error()
		}
		if body, err = io.ReadAll(zr); err != nil {
			return nil, 400, "gzip: " + err.Error()
		}
	default:
		return nil, 501, fmt.Sprintf("content encoding %q", enc)
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
