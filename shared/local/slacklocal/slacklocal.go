// Package slacklocal stands in for Slack on a laptop and in tests: slack-go's
// slacktest server, extended to record every chat.postMessage and chat.update
// so a test (or the demo) can read what regflow posted and edited.
package slacklocal

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slacktest"
)

// Message is one message as Slack would hold it, after any updates.
type Message struct {
	Channel string
	TS      string
	Text    string
	Blocks  slack.Blocks
	// Updates counts chat.update calls applied to this message.
	Updates int
}

// Server is a running Slack stand-in.
type Server struct {
	srv  *slacktest.Server
	seq  atomic.Int64
	mu   sync.Mutex
	msgs []*Message
	// OnPost, when set, is called after each new message (the demo renders it).
	onPost func(Message)
}

// Start starts the stand-in; Stop ends it.
func Start(onPost func(Message)) *Server {
	s := &Server{onPost: onPost}
	s.srv = slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/chat.postMessage", s.post)
		c.Handle("/chat.update", s.update)
	})
	s.srv.Start()
	return s
}

// Stop shuts the server down.
func (s *Server) Stop() { s.srv.Stop() }

// APIURL is what slack.OptionAPIURL needs.
func (s *Server) APIURL() string { return s.srv.GetAPIURL() }

// Messages returns copies of every message posted so far, in order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, len(s.msgs))
	for i, m := range s.msgs {
		out[i] = *m
	}
	return out
}

func decode(r *http.Request) (url.Values, slack.Blocks, error) {
	if err := r.ParseForm(); err != nil {
		return nil, slack.Blocks{}, err
	}
	var blocks slack.Blocks
	if b := r.Form.Get("blocks"); b != "" {
		if err := json.Unmarshal([]byte(b), &blocks); err != nil {
			return nil, blocks, fmt.Errorf("blocks: %w", err)
		}
	}
	return r.Form, blocks, nil
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) post(w http.ResponseWriter, r *http.Request) {
	form, blocks, err := decode(r)
	if err != nil {
		reply(w, map[string]any{"ok": false, "error": "invalid_blocks"})
		return
	}
	if form.Get("channel") == "" {
		reply(w, map[string]any{"ok": false, "error": "channel_not_found"})
		return
	}
	m := &Message{Channel: form.Get("channel"), TS: fmt.Sprintf("1700000000.%06d", s.seq.Add(1)), Text: form.Get("text"), Blocks: blocks}
	s.mu.Lock()
	s.msgs = append(s.msgs, m)
	cp := *m
	s.mu.Unlock()
	if s.onPost != nil {
		s.onPost(cp)
	}
	reply(w, map[string]any{"ok": true, "channel": m.Channel, "ts": m.TS})
}

func (s *Server) update(w http.ResponseWriter, r *http.Request) {
	form, blocks, err := decode(r)
	if err != nil {
		reply(w, map[string]any{"ok": false, "error": "invalid_blocks"})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.msgs {
		if m.Channel == form.Get("channel") && m.TS == form.Get("ts") {
			m.Text, m.Blocks = form.Get("text"), blocks
			m.Updates++
			reply(w, map[string]any{"ok": true, "channel": m.Channel, "ts": m.TS})
			return
		}
	}
	reply(w, map[string]any{"ok": false, "error": "message_not_found"})
}
