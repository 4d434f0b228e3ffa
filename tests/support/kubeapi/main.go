// kubeapi: a stand-in for the Kubernetes API server's pod endpoints, for
// the pod watcher's tests. Standard library only; built offline.
//
// It keeps a store of pods (any JSON the test posts), a resourceVersion
// counter and the history of changes, and serves them over HTTPS the way
// the real API server does:
//
//	GET /api/v1/pods?fieldSelector=spec.nodeName=N&limit=L[&continue=C]
//	    a PodList page (items sorted by namespace/name), metadata.continue
//	    while more remain; an expired continue token is 410 Expired.
//	GET /api/v1/pods?fieldSelector=...&watch=1&resourceVersion=RV
//	    [&allowWatchBookmarks=true][&timeoutSeconds=S]
//	    newline-delimited watch events after RV, then live ones, until S
//	    seconds pass. A resourceVersion older than the last compaction gets
//	    HTTP 200 and an ERROR event carrying a 410 Expired Status (what the
//	    API server sends), or HTTP 410 with -watch_gone_http.
//
// fieldSelector must be absent (all pods) or spec.nodeName=<node>; anything
// else is 400. Requests need "Authorization: Bearer <token>" (401 with a
// Status body otherwise).
//
// Control endpoints (no auth; any method):
//
//	/control/pod           body: a Pod; added, or modified if it exists
//	/control/pods?count=N  body: a Pod; N copies named NAME-i (silently)
//	/control/delete?namespace=&name=
//	                       with silent=1, either changes the store and the
//	                       resourceVersion but no watch sees it (events lost,
//	                       as to compaction: only a re-list shows them)
//	/control/bookmark      sends a BOOKMARK at the current resourceVersion
//	/control/compact       watches from older resourceVersions now get 410
//	/control/close-watches ends every open watch normally
//	/control/set?token=&watch_max_events=&watch_gone_http=&fail=&code=&retry_after=
//	                       the accepted token; end each watch after N
//	                       events; answer the next `fail` pod requests with
//	                       `code` (and a Retry-After header)
//	/control/requests      JSON array of the pod requests served so far
package main

import (
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

type event struct {
	rv  int
	typ string // ADDED, MODIFIED, DELETED, BOOKMARK
	pod map[string]interface{}
}

type request struct {
	Watch           bool   `json:"watch"`
	Selector        string `json:"selector"`
	ResourceVersion string `json:"resource_version"`
	Continue        string `json:"continue"`
	Limit           string `json:"limit"`
	Bookmarks       string `json:"allow_watch_bookmarks"`
	TimeoutSeconds  string `json:"timeout_seconds"`
	AuthOK          bool   `json:"auth_ok"`
	Status          int    `json:"status"`
	Events          int    `json:"events"`
}

type server struct {
	mu        sync.Mutex
	rv        int
	pods      map[string]map[string]interface{} // "namespace/name"
	history   []event
	compacted int
	changed   chan struct{} // closed (and replaced) on every change
	closeGen  int

	token          string
	watchMaxEvents int
	watchGoneHTTP  bool
	fail           int
	failCode       int
	retryAfter     string

	requests []*request
}

func (s *server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func status(code int, reason, message string) map[string]interface{} {
	return map[string]interface{}{
		"kind": "Status", "apiVersion": "v1", "metadata": map[string]interface{}{},
		"status": "Failure", "message": message, "reason": reason, "code": code,
	}
}

func writeJSON(w http.ResponseWriter, code int, v interface{}) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func podKey(p map[string]interface{}) string {
	m, _ := p["metadata"].(map[string]interface{})
	ns, _ := m["namespace"].(string)
	name, _ := m["name"].(string)
	return ns + "/" + name
}

func podNode(p map[string]interface{}) string {
	spec, _ := p["spec"].(map[string]interface{})
	n, _ := spec["nodeName"].(string)
	return n
}

// A deep copy with metadata.resourceVersion set.
func withRV(p map[string]interface{}, rv int) map[string]interface{} {
	var c map[string]interface{}
	b, _ := json.Marshal(p)
	json.Unmarshal(b, &c)
	m, _ := c["metadata"].(map[string]interface{})
	if m == nil {
		m = map[string]interface{}{}
		c["metadata"] = m
	}
	m["resourceVersion"] = strconv.Itoa(rv)
	c["kind"] = "Pod"
	c["apiVersion"] = "v1"
	return c
}

// Parses fieldSelector: "" (every node) or spec.nodeName=<node>.
func parseSelector(sel string) (node string, all bool, ok bool) {
	if sel == "" {
		return "", true, true
	}
	for _, op := range []string{"==", "="} {
		if strings.HasPrefix(sel, "spec.nodeName"+op) {
			return strings.TrimPrefix(sel, "spec.nodeName"+op), false, true
		}
	}
	return "", false, false
}

func (s *server) handlePods(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	req := &request{
		Watch:           q.Get("watch") == "1" || q.Get("watch") == "true",
		Selector:        q.Get("fieldSelector"),
		ResourceVersion: q.Get("resourceVersion"),
		Continue:        q.Get("continue"),
		Limit:           q.Get("limit"),
		Bookmarks:       q.Get("allowWatchBookmarks"),
		TimeoutSeconds:  q.Get("timeoutSeconds"),
	}
	s.mu.Lock()
	s.requests = append(s.requests, req)
	req.AuthOK = r.Header.Get("Authorization") == "Bearer "+s.token
	fail := 0
	if req.AuthOK && s.fail > 0 {
		s.fail--
		fail = s.failCode
	}
	retryAfter := s.retryAfter
	// Taken with the request's record, so a close-watches the test sends
	// once it sees the record always ends this watch.
	closeGen := s.closeGen
	s.mu.Unlock()
	setStatus := func(code int) {
		s.mu.Lock()
		req.Status = code
		s.mu.Unlock()
	}

	if !req.AuthOK {
		setStatus(401)
		writeJSON(w, 401, status(401, "Unauthorized", "Unauthorized"))
		return
	}
	if fail != 0 {
		setStatus(fail)
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		writeJSON(w, fail, status(fail, "InternalError", fmt.Sprintf("injected failure %d", fail)))
		return
	}
	node, all, ok := parseSelector(req.Selector)
	if !ok {
		setStatus(400)
		writeJSON(w, 400, status(400, "BadRequest",
			fmt.Sprintf("field label not supported: %s", req.Selector)))
		return
	}
	match := func(p map[string]interface{}) bool { return all || podNode(p) == node }
	if req.Watch {
		s.watch(w, r, req, match, closeGen)
	} else {
		s.list(w, req, match)
	}
}

type continueToken struct {
	RV     int `json:"rv"`
	Offset int `json:"offset"`
}

func (s *server) list(w http.ResponseWriter, req *request, match func(map[string]interface{}) bool) {
	s.mu.Lock()
	rv := s.rv
	offset := 0
	if req.Continue != "" {
		var t continueToken
		b, err := base64.RawURLEncoding.DecodeString(req.Continue)
		if err == nil {
			err = json.Unmarshal(b, &t)
		}
		if err != nil {
			req.Status = 400
			s.mu.Unlock()
			writeJSON(w, 400, status(400, "BadRequest", "invalid continue token"))
			return
		}
		if t.RV < s.compacted {
			req.Status = 410
			s.mu.Unlock()
			writeJSON(w, 410, status(410, "Expired",
				"The provided continue parameter is too old to display a consistent list result."))
			return
		}
		rv, offset = t.RV, t.Offset
	}
	var keys []string
	for k, p := range s.pods {
		if match(p) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	limit, _ := strconv.Atoi(req.Limit)
	end := len(keys)
	if offset > end {
		offset = end
	}
	if limit > 0 && offset+limit < end {
		end = offset + limit
	}
	items := []interface{}{}
	for _, k := range keys[offset:end] {
		p := s.pods[k]
		m, _ := p["metadata"].(map[string]interface{})
		prv, _ := strconv.Atoi(m["resourceVersion"].(string))
		items = append(items, withRV(p, prv))
	}
	meta := map[string]interface{}{"resourceVersion": strconv.Itoa(rv)}
	if end < len(keys) {
		b, _ := json.Marshal(continueToken{RV: rv, Offset: end})
		meta["continue"] = base64.RawURLEncoding.EncodeToString(b)
		meta["remainingItemCount"] = len(keys) - end
	}
	req.Status = 200
	s.mu.Unlock()
	writeJSON(w, 200, map[string]interface{}{
		"kind": "PodList", "apiVersion": "v1", "metadata": meta, "items": items,
	})
}

func (s *server) watch(w http.ResponseWriter, r *http.Request, req *request,
	match func(map[string]interface{}) bool, closeGen int) {
	from, err := strconv.Atoi(req.ResourceVersion)
	if err != nil {
		from = 0 // "" or "0": any version; start from now
	}
	timeout := 30 * time.Minute
	if t, err := strconv.Atoi(req.TimeoutSeconds); err == nil && t > 0 {
		timeout = time.Duration(t) * time.Second
	}
	bookmarks := req.Bookmarks == "true"

	s.mu.Lock()
	if req.ResourceVersion == "" || req.ResourceVersion == "0" {
		from = s.rv
	}
	gone := from < s.compacted
	msg := fmt.Sprintf("too old resource version: %d (%d)", from, s.compacted)
	goneHTTP := s.watchGoneHTTP
	maxEvents := s.watchMaxEvents
	pos := sort.Search(len(s.history), func(i int) bool { return s.history[i].rv > from })
	if gone && goneHTTP {
		req.Status = 410
	} else {
		req.Status = 200
	}
	s.mu.Unlock()

	if gone && goneHTTP {
		writeJSON(w, 410, status(410, "Gone", msg))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(200)
	flusher, _ := w.(http.Flusher)
	enc := json.NewEncoder(w) // one object per line, as the API server frames them
	if gone {
		enc.Encode(map[string]interface{}{"type": "ERROR", "object": status(410, "Expired", msg)})
		flusher.Flush()
		return
	}
	flusher.Flush()
	deadline := time.After(timeout)
	sent := 0
	for {
		s.mu.Lock()
		evs := s.history[pos:]
		pos = len(s.history)
		ch := s.changed
		closed := s.closeGen != closeGen
		s.mu.Unlock()
		for _, e := range evs {
			var obj map[string]interface{}
			if e.typ == "BOOKMARK" {
				if !bookmarks {
					continue
				}
				obj = map[string]interface{}{"kind": "Pod", "apiVersion": "v1",
					"metadata": map[string]interface{}{"resourceVersion": strconv.Itoa(e.rv)}}
			} else {
				if !match(e.pod) {
					continue
				}
				obj = e.pod
			}
			if err := enc.Encode(map[string]interface{}{"type": e.typ, "object": obj}); err != nil {
				return
			}
			sent++
			s.mu.Lock()
			req.Events = sent
			s.mu.Unlock()
			if maxEvents > 0 && sent >= maxEvents {
				flusher.Flush()
				return
			}
		}
		flusher.Flush()
		if closed {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			return
		case <-r.Context().Done():
			return
		}
	}
}

func (s *server) handleControl(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch strings.TrimPrefix(r.URL.Path, "/control/") {
	case "pod":
		var p map[string]interface{}
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &p); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		s.rv++
		p = withRV(p, s.rv)
		typ := "ADDED"
		if _, ok := s.pods[podKey(p)]; ok {
			typ = "MODIFIED"
		}
		s.pods[podKey(p)] = p
		if q.Get("silent") != "1" {
			s.history = append(s.history, event{s.rv, typ, p})
			s.notifyLocked()
		}
		fmt.Fprintf(w, "%d\n", s.rv)
	case "pods":
		// count copies of the template pod in the body, silently (no
		// watch sees them; a list does): NAME-i, uid UID-i, and container
		// ids numbered from 1<<32 up, so the abuse tests need not post
		// 100,000 pods one by one.
		var tmpl map[string]interface{}
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &tmpl); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		count, _ := strconv.Atoi(q.Get("count"))
		meta, _ := tmpl["metadata"].(map[string]interface{})
		name, _ := meta["name"].(string)
		uid, _ := meta["uid"].(string)
		nextID := uint64(1) << 32
		for i := 0; i < count; i++ {
			s.rv++
			p := withRV(tmpl, s.rv) // a deep copy
			m := p["metadata"].(map[string]interface{})
			m["name"] = fmt.Sprintf("%s-%d", name, i)
			m["uid"] = fmt.Sprintf("%s-%d", uid, i)
			if st, ok := p["status"].(map[string]interface{}); ok {
				if cs, ok := st["containerStatuses"].([]interface{}); ok {
					for _, c := range cs {
						if cm, ok := c.(map[string]interface{}); ok {
							cm["containerID"] = fmt.Sprintf("containerd://%064x", nextID)
							nextID++
						}
					}
				}
			}
			s.pods[podKey(p)] = p
		}
		fmt.Fprintf(w, "%d\n", s.rv)
	case "delete":
		key := q.Get("namespace") + "/" + q.Get("name")
		p, ok := s.pods[key]
		if !ok {
			http.Error(w, "no such pod", 404)
			return
		}
		s.rv++
		delete(s.pods, key)
		if q.Get("silent") != "1" {
			s.history = append(s.history, event{s.rv, "DELETED", withRV(p, s.rv)})
			s.notifyLocked()
		}
		fmt.Fprintf(w, "%d\n", s.rv)
	case "bookmark":
		s.history = append(s.history, event{s.rv, "BOOKMARK", nil})
		s.notifyLocked()
		fmt.Fprintf(w, "%d\n", s.rv)
	case "compact":
		s.compacted = s.rv
		fmt.Fprintf(w, "%d\n", s.rv)
	case "close-watches":
		s.closeGen++
		s.notifyLocked()
	case "set":
		if v := q.Get("token"); v != "" {
			s.token = v
		}
		if v := q.Get("watch_max_events"); v != "" {
			s.watchMaxEvents, _ = strconv.Atoi(v)
		}
		if v := q.Get("watch_gone_http"); v != "" {
			s.watchGoneHTTP = v == "1"
		}
		if v := q.Get("fail"); v != "" {
			s.fail, _ = strconv.Atoi(v)
			s.failCode, _ = strconv.Atoi(q.Get("code"))
			s.retryAfter = q.Get("retry_after")
		}
	case "requests":
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(s.requests)
	default:
		http.Error(w, "unknown control", 404)
	}
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	addrFile := flag.String("addr-file", "", "write the bound host:port here once listening")
	certFile := flag.String("tls-cert", "", "server certificate (PEM)")
	keyFile := flag.String("tls-key", "", "server key (PEM)")
	token := flag.String("token", "", "the bearer token accepted at start")
	flag.Parse()

	s := &server{pods: map[string]map[string]interface{}{}, changed: make(chan struct{}),
		token: *token, rv: 100}
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		log.Fatalf("kubeapi: %v", err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("kubeapi: %v", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/pods", s.handlePods)
	mux.HandleFunc("/control/", s.handleControl)
	srv := &http.Server{Handler: mux, ErrorLog: log.New(os.Stderr, "kubeapi: ", 0),
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}}}
	if *addrFile != "" {
		tmp := *addrFile + ".tmp"
		os.WriteFile(tmp, []byte(ln.Addr().String()), 0o644)
		os.Rename(tmp, *addrFile)
	}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		os.Exit(0)
	}()
	log.Fatal(srv.Serve(tls.NewListener(ln, srv.TLSConfig)))
}
