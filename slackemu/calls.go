package slackemu

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Endpoint names for the two non-method URLs, as Calls, FailNext and
// SetLatency know them.
const (
	methodResponseURL = "response_url"
	methodUpload      = "upload"
)

const maxBody = 16 << 20

type authKind int

const (
	authBot authKind = iota
	authApp
	authNone
)

type endpoint struct {
	name    string
	id      string // the path id of response_url and upload
	auth    authKind
	handler func(*Server, *apiRequest) (reply, error)
}

// reply is a successful answer's fields besides "ok".
type reply map[string]any

// slackError is an {"ok":false} answer.
type slackError struct {
	code     string
	messages []string // response_metadata.messages, to say what exactly was wrong
	status   int      // HTTP status; 0 means 200, as Slack answers errors
}

func (e *slackError) Error() string { return e.code }

func errCode(code string, messages ...string) error {
	return &slackError{code: code, messages: messages}
}

// apiRequest is one call's arguments, whichever way they were sent.
type apiRequest struct {
	method string
	id     string
	form   url.Values
	json   map[string]json.RawMessage
	body   []byte
	upload []byte // a multipart "file" part
	token  string
	events []Event
}

// get is an argument as a string: form values as sent, JSON strings
// unquoted, other JSON values as JSON text.
func (r *apiRequest) get(name string) string {
	if r.json == nil {
		return r.form.Get(name)
	}
	raw, ok := r.json[name]
	if !ok {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	if string(raw) == "null" {
		return ""
	}
	return string(raw)
}

func (r *apiRequest) has(name string) bool {
	if r.json == nil {
		_, ok := r.form[name]
		return ok
	}
	_, ok := r.json[name]
	return ok
}

// rawJSON is an argument that holds JSON (blocks, view, metadata): a form
// value, a JSON value, or a JSON string that holds JSON.
func (r *apiRequest) rawJSON(name string) json.RawMessage {
	if r.json == nil {
		if v := r.form.Get(name); v != "" {
			return json.RawMessage(v)
		}
		return nil
	}
	raw, ok := r.json[name]
	if !ok || string(raw) == "null" {
		return nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return json.RawMessage(s)
	}
	return raw
}

func (r *apiRequest) boolArg(name string) bool {
	v := r.get(name)
	return v == "1" || v == "true"
}

func (r *apiRequest) intArg(name string, def int) (int, error) {
	v := r.get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, errCode("invalid_arguments", fmt.Sprintf("%s must be a number, got %q", name, v))
	}
	return n, nil
}

func (r *apiRequest) emit(e Event) { r.events = append(r.events, e) }

func readRequest(r *http.Request, ep endpoint) (*apiRequest, error) {
	req := &apiRequest{method: ep.name, id: ep.id}
	r.Body = http.MaxBytesReader(nil, r.Body, maxBody)
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return req, fmt.Errorf("read body: %w", err)
		}
		req.body = body
		req.json = map[string]json.RawMessage{}
		if len(bytes.TrimSpace(body)) > 0 {
			if err := json.Unmarshal(body, &req.json); err != nil {
				return req, fmt.Errorf("decode JSON body: %w", err)
			}
		}
	case "multipart/form-data":
		if err := r.ParseMultipartForm(maxBody); err != nil {
			return req, fmt.Errorf("read multipart body: %w", err)
		}
		req.form = r.Form
		if fhs := r.MultipartForm.File["file"]; len(fhs) > 0 {
			f, err := fhs[0].Open()
			if err != nil {
				return req, fmt.Errorf("open uploaded file: %w", err)
			}
			defer f.Close()
			if req.upload, err = io.ReadAll(f); err != nil {
				return req, fmt.Errorf("read uploaded file: %w", err)
			}
		}
	case "application/x-www-form-urlencoded", "":
		if err := r.ParseForm(); err != nil {
			return req, fmt.Errorf("read form body: %w", err)
		}
		req.form = r.Form
	default:
		// Uploads may be sent as the raw bytes.
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return req, fmt.Errorf("read body: %w", err)
		}
		req.body, req.upload = body, body
		req.form = r.URL.Query()
	}
	req.token = req.get("token")
	if auth, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && req.token == "" {
		req.token = auth
	}
	return req, nil
}

func (s *Server) authorized(kind authKind, token string) bool {
	switch kind {
	case authBot:
		if s.cfg.botToken != "" {
			return token == s.cfg.botToken
		}
		return strings.HasPrefix(token, "xoxb-")
	case authApp:
		if s.cfg.appToken != "" {
			return token == s.cfg.appToken
		}
		return strings.HasPrefix(token, "xapp-")
	default:
		return true
	}
}

// serveCall runs one call through latency, auth, faults and rate limits,
// applies it, and answers. The call is recorded before the answer is
// written, so a client that got its answer always finds its call in Calls.
func (s *Server) serveCall(w http.ResponseWriter, r *http.Request, ep endpoint) {
	req, readErr := readRequest(r, ep)
	call := Call{Method: ep.name, Form: req.form, Token: req.token, Time: s.now()}
	if req.json != nil {
		_ = json.Unmarshal(req.body, &call.JSON) // already decoded once above
	}
	if readErr != nil {
		s.answer(w, &call, http.StatusBadRequest, nil, &slackError{code: "invalid_form_data", messages: []string{readErr.Error()}})
		return
	}

	s.mu.Lock()
	fault, hasFault := s.nextFaultLocked(ep.name)
	delay := s.latency[ep.name] + fault.Latency
	s.mu.Unlock()

	if err := s.sleep(r.Context(), delay); err != nil {
		call.Error = "no answer: " + err.Error() + " during the emulated latency"
		s.record(call)
		dropConn(w)
		return
	}
	if !s.authorized(ep.auth, req.token) {
		s.answer(w, &call, http.StatusOK, nil, errCode("invalid_auth"))
		return
	}
	if hasFault && fault.failsBefore() {
		s.answerFault(w, &call, fault)
		return
	}

	s.mu.Lock()
	var channelID string
	if ep.name == "chat.postMessage" {
		if c, _ := s.resolveChannelLocked(req.get("channel")); c != nil {
			channelID = c.id
		}
	}
	if wait, over := s.limitLocked(ep.name, channelID); over {
		s.mu.Unlock()
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(wait)))
		s.answer(w, &call, http.StatusTooManyRequests, nil, errCode("ratelimited"))
		return
	}
	rep, err := ep.handler(s, req)
	s.bumpLocked()
	respDelay := s.afterApply[ep.name]
	s.mu.Unlock()
	s.emit(req.events)
	if err := s.sleep(r.Context(), respDelay); err != nil {
		call.Status, call.Error = 0, "applied, but the client left before the answer"
		s.record(call)
		dropConn(w)
		return
	}

	switch {
	case hasFault && fault.Hang:
		call.Status, call.Error = 0, fault.String()
		s.record(call)
		select {
		case <-r.Context().Done():
		case <-s.ctx.Done():
		}
		dropConn(w)
	case hasFault && fault.Drop:
		call.Status, call.Error = 0, fault.String()
		s.record(call)
		dropConn(w)
	default:
		s.answer(w, &call, http.StatusOK, rep, err)
	}
}

func (s *Server) answerFault(w http.ResponseWriter, call *Call, f Fault) {
	if f.Error != "" {
		s.answer(w, call, http.StatusOK, nil, errCode(f.Error))
		return
	}
	if f.Status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(f.RetryAfter)))
	}
	call.Status, call.Error = f.Status, f.String()
	s.record(*call)
	http.Error(w, http.StatusText(f.Status), f.Status)
}

// answer records the call and writes a Slack-shaped JSON answer.
func (s *Server) answer(w http.ResponseWriter, call *Call, status int, rep reply, err error) {
	body := map[string]any{"ok": true}
	if err != nil {
		body = map[string]any{"ok": false}
		var se *slackError
		if errors.As(err, &se) {
			body["error"] = se.code
			if len(se.messages) > 0 {
				body["response_metadata"] = map[string]any{"messages": se.messages}
			}
			if se.status != 0 {
				status = se.status
			}
		} else {
			body["error"] = "internal_error"
			body["response_metadata"] = map[string]any{"messages": []string{err.Error()}}
			status = http.StatusInternalServerError
		}
		call.Error = body["error"].(string)
	}
	for k, v := range rep {
		body[k] = v
	}
	call.Status = status
	b, mErr := json.Marshal(body)
	if mErr != nil {
		status = http.StatusInternalServerError
		call.Status, call.Error = status, mErr.Error()
		b = []byte(`{"ok":false,"error":"internal_error"}`)
	}
	s.record(*call)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func (s *Server) record(c Call) {
	s.update(func() []Event {
		s.calls = append(s.calls, c)
		return nil
	})
}

// dropConn resets the client's connection without an answer, as a load
// balancer that lost the backend would.
func dropConn(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // an RST, not a clean FIN
	}
	_ = conn.Close()
}

// Calls lists the recorded calls to method, oldest first; "" lists all.
func (s *Server) Calls(method string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	for _, c := range s.calls {
		if method == "" || c.Method == method {
			out = append(out, c)
		}
	}
	return out
}
