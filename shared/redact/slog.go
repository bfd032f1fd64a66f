package redact

import (
	"context"
	"encoding/json"
	"log/slog"
)

// Handler wraps h so that no record it writes carries a credential: the message and
// every attribute (strings, errors, and values the handler would encode) are redacted.
func Handler(h slog.Handler) slog.Handler {
	if _, ok := h.(handler); ok {
		return h
	}
	return handler{h}
}

type handler struct{ next slog.Handler }

func (h handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h handler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, String(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(attr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h handler) WithAttrs(as []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(as))
	for i, a := range as {
		clean[i] = attr(a)
	}
	return handler{h.next.WithAttrs(clean)}
}

func (h handler) WithGroup(name string) slog.Handler { return handler{h.next.WithGroup(name)} }

func attr(a slog.Attr) slog.Attr {
	a.Value = value(a.Value)
	return a
}

func value(v slog.Value) slog.Value {
	switch v.Kind() {
	case slog.KindString:
		return slog.StringValue(String(v.String()))
	case slog.KindGroup:
		as := v.Group()
		clean := make([]slog.Attr, len(as))
		for i, a := range as {
			clean[i] = attr(a)
		}
		return slog.GroupValue(clean...)
	case slog.KindLogValuer:
		return value(v.Resolve())
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return slog.StringValue(String(x.Error()))
		default:
			// What a JSON handler would write, redacted; left as it was when clean.
			b, err := json.Marshal(x)
			if err != nil {
				return v
			}
			if c := String(string(b)); c != string(b) {
				return slog.AnyValue(json.RawMessage(c))
			}
		}
	}
	return v
}
