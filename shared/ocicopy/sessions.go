package ocicopy

import (
	"context"
	"sync"
)

// UploadSessions keeps the target's sessions of chunked blob uploads between copies, so that a
// copy that ran out of time or attempts (a Lambda timeout, a promotion redelivered) resumes its
// large blobs where the target got to instead of from zero. Keys are
// "<target repository>@<digest>"; values are upload URLs, which carry no credentials.
type UploadSessions interface {
	// Load returns the upload URL saved under key, if any.
	Load(ctx context.Context, key string) (url string, ok bool, err error)
	// Save records url under key; it is called after every chunk the target accepted.
	Save(ctx context.Context, key, url string) error
	// Delete forgets key: the blob is committed, or its session is gone.
	Delete(ctx context.Context, key string) error
}

// WithUploadSessions keeps chunked uploads' sessions in s (see UploadSessions and WithChunkSize).
func WithUploadSessions(s UploadSessions) Option { return func(o *options) { o.sessions = s } }

// MemoryUploadSessions is an UploadSessions for copies made by one process (the CLI, a warm
// Lambda, tests). The zero value is ready to use.
type MemoryUploadSessions struct {
	mu sync.Mutex
	m  map[string]string
}

// Load implements UploadSessions.
func (s *MemoryUploadSessions) Load(_ context.Context, key string) (string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.m[key]
	return u, ok, nil
}

// Save implements UploadSessions.
func (s *MemoryUploadSessions) Save(_ context.Context, key, url string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]string{}
	}
	s.m[key] = url
	return nil
}

// Delete implements UploadSessions.
func (s *MemoryUploadSessions) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
	return nil
}

// Len is the number of sessions kept.
func (s *MemoryUploadSessions) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}
