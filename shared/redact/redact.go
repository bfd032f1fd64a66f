// Package redact removes credentials from text before it leaves regflow through a log,
// a returned error, an audit entry or a Slack message: URLs that are credentials
// themselves (Slack's response_url and webhooks, presigned S3 and other signed URLs,
// URLs with a password), Slack tokens, bearer and basic credentials, and the signature
// fields of S3's error documents. It is pure and pattern-based, so every sink can apply
// it to whatever reaches it, from whichever dependency the text came.
//
// The composition root (shared/app) applies it at the sinks it wires: the logger, the
// store's audit writes and the error an invocation returns; shared/slackbot applies it
// to every message it sends. A package that builds such text itself (the promoter's
// copy errors) needs nothing more, as long as the text only leaves through those sinks.
package redact

import (
	"net/url"
	"regexp"
	"strings"
)

// Mark replaces what was removed.
const Mark = "[redacted]"

var (
	// urlRE finds URLs, also JSON-escaped (https:\/\/) and percent-encoded (https%3A%2F%2F)
	// ones. A URL ends at whitespace, a quote or markup.
	urlRE = regexp.MustCompile(`(?i)\b[a-z][a-z0-9+.-]*(?:://|:\\/\\/|%3A%2F%2F)[^\s"'<>\x60]+`)
	// Slack tokens: bot, user, app-level, refresh and configuration tokens.
	slackTokenRE = regexp.MustCompile(`\b(xox[a-z]|xapp|xoxe\.xox[a-z])-[A-Za-z0-9-]+`)
	// Credentials in headers or query strings written out on their own.
	bearerRE = regexp.MustCompile(`(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}`)
	paramRE  = regexp.MustCompile(`(?i)\b(x-amz-security-token|x-amz-signature|x-amz-credential|awsaccesskeyid|x-goog-signature|x-goog-credential|signature|sig|token|access_token|client_secret|password)=[^&\s"'<>]+`)
	// S3's SignatureDoesNotMatch and similar documents echo what was signed.
	xmlRE = regexp.MustCompile(`(?is)<(StringToSign|StringToSignBytes|CanonicalRequest|CanonicalRequestBytes|SignatureProvided|AWSAccessKeyId|Token-0)>.*?</(?:StringToSign|StringToSignBytes|CanonicalRequest|CanonicalRequestBytes|SignatureProvided|AWSAccessKeyId|Token-0)>`)
)

// secretParams are query parameters whose presence makes a whole query a credential.
var secretParams = []string{
	"x-amz-signature", "x-amz-credential", "x-amz-security-token", "awsaccesskeyid", "signature",
	"x-goog-signature", "x-goog-credential", "sig", "se", "token", "access_token", "key",
}

// String returns s without credentials. Text without any is returned unchanged.
func String(s string) string {
	if s == "" {
		return s
	}
	s = xmlRE.ReplaceAllString(s, "<$1>"+Mark+"</$1>")
	s = urlRE.ReplaceAllStringFunc(s, func(u string) string {
		// Prose punctuation after a URL is not part of it ("GET https://…: EOF").
		trimmed := strings.TrimRight(u, ".,:;!?)}")
		if !strings.HasSuffix(trimmed, Mark) {
			trimmed = strings.TrimRight(trimmed, "]")
		}
		return URL(trimmed) + u[len(trimmed):]
	})
	s = slackTokenRE.ReplaceAllString(s, "$1-"+Mark)
	s = bearerRE.ReplaceAllString(s, "$1 "+Mark)
	s = paramRE.ReplaceAllString(s, "$1="+Mark)
	return s
}

// URL returns u without the parts that carry a credential: the path and query of a Slack
// response_url or webhook, the query of a signed URL, a password. An escaped URL whose
// parts cannot be told apart keeps only its scheme.
func URL(u string) string {
	// What this function returns comes back unchanged.
	for _, end := range []string{"/" + Mark, "?" + Mark, "://" + Mark} {
		if strings.HasSuffix(u, end) {
			return u
		}
	}
	if scheme, rest, ok := strings.Cut(u, "://"+Mark+"@"); ok {
		clean := URL(scheme + "://" + rest)
		return scheme + "://" + Mark + "@" + strings.TrimPrefix(clean, scheme+"://")
	}
	lower := strings.ToLower(u)
	if !strings.Contains(lower, "://") {
		scheme, _, _ := strings.Cut(u, ":")
		if i := strings.Index(lower, "%3a%2f%2f"); i >= 0 {
			scheme = u[:i]
		}
		return scheme + "://" + Mark
	}
	p, err := url.Parse(u)
	if err != nil || p.Host == "" {
		scheme, _, _ := strings.Cut(u, "://")
		return scheme + "://" + Mark
	}
	user := ""
	if p.User != nil {
		user = Mark + "@"
		p.User = nil
		u = p.String()
		u = p.Scheme + "://" + user + strings.TrimPrefix(u, p.Scheme+"://")
	}
	if slackHook(p) {
		return p.Scheme + "://" + user + p.Host + "/" + Mark
	}
	if signedQuery(p.RawQuery) {
		return p.Scheme + "://" + user + p.Host + p.EscapedPath() + "?" + Mark
	}
	return u
}

// slackHook: response_url and incoming webhooks are credentials in their path
// (hooks.slack.com/actions/…, /services/…, /workflows/…, and the same paths on a
// stand-in).
func slackHook(p *url.URL) bool {
	if strings.EqualFold(p.Hostname(), "hooks.slack.com") {
		return true
	}
	for _, prefix := range []string{"/actions/", "/services/", "/workflows/", "/triggers/"} {
		if strings.HasPrefix(p.Path, prefix) {
			return true
		}
	}
	return false
}

func signedQuery(raw string) bool {
	if raw == "" {
		return false
	}
	for _, kv := range strings.Split(raw, "&") {
		k, _, _ := strings.Cut(kv, "=")
		if k, err := url.QueryUnescape(k); err == nil {
			for _, s := range secretParams {
				if strings.EqualFold(k, s) {
					return true
				}
			}
		}
	}
	return false
}

// Error returns err with a redacted message; errors.Is and errors.As still see err.
// Nil stays nil.
func Error(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if clean := String(msg); clean != msg {
		return &redacted{msg: clean, err: err}
	}
	return err
}

type redacted struct {
	msg string
	err error
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.err }

// Map returns m with its values redacted (a copy, when anything changed).
func Map(m map[string]string) map[string]string {
	var out map[string]string
	for k, v := range m {
		if c := String(v); c != v {
			if out == nil {
				out = make(map[string]string, len(m))
				for k2, v2 := range m {
					out[k2] = v2
				}
			}
			out[k] = c
		}
	}
	if out == nil {
		return m
	}
	return out
}
