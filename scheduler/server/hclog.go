package server

import (
	"context"
	"io"
	"log"
	"log/slog"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// hclogger adapts a log/slog logger to the hclog.Logger raft wants, so
// that raft's messages go wherever the rest of petite's logs go, in one
// style.
type hclogger struct {
	l     *slog.Logger
	name  string
	args  []any
	level *slog.LevelVar
}

// newHCLogger returns an hclog.Logger writing to l. raft's chatter at Info
// is routine for a server, so it is shown from Warn unless the slog
// handler asks for more.
func newHCLogger(l *slog.Logger, name string) hclog.Logger {
	lv := new(slog.LevelVar)
	lv.Set(slog.LevelWarn)
	return &hclogger{l: l, name: name, level: lv}
}

func toSlog(level hclog.Level) slog.Level {
	switch level {
	case hclog.Trace:
		return slog.LevelDebug - 4
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Info, hclog.DefaultLevel, hclog.NoLevel:
		return slog.LevelInfo
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	case hclog.Off:
		return slog.LevelError + 100
	}
	return slog.LevelInfo
}

func fromSlog(level slog.Level) hclog.Level {
	switch {
	case level < slog.LevelDebug:
		return hclog.Trace
	case level < slog.LevelInfo:
		return hclog.Debug
	case level < slog.LevelWarn:
		return hclog.Info
	case level < slog.LevelError:
		return hclog.Warn
	case level < slog.LevelError+100:
		return hclog.Error
	}
	return hclog.Off
}

func (h *hclogger) enabled(level slog.Level) bool {
	return level >= h.level.Level() && h.l.Enabled(context.Background(), level)
}

func (h *hclogger) Log(level hclog.Level, msg string, args ...any) {
	sl := toSlog(level)
	if !h.enabled(sl) {
		return
	}
	all := make([]any, 0, len(h.args)+len(args)+2)
	if h.name != "" {
		all = append(all, "logger", h.name)
	}
	all = append(append(all, h.args...), args...)
	h.l.Log(context.Background(), sl, msg, all...)
}

func (h *hclogger) Trace(msg string, args ...any) { h.Log(hclog.Trace, msg, args...) }
func (h *hclogger) Debug(msg string, args ...any) { h.Log(hclog.Debug, msg, args...) }
func (h *hclogger) Info(msg string, args ...any)  { h.Log(hclog.Info, msg, args...) }
func (h *hclogger) Warn(msg string, args ...any)  { h.Log(hclog.Warn, msg, args...) }
func (h *hclogger) Error(msg string, args ...any) { h.Log(hclog.Error, msg, args...) }

func (h *hclogger) IsTrace() bool { return h.enabled(toSlog(hclog.Trace)) }
func (h *hclogger) IsDebug() bool { return h.enabled(slog.LevelDebug) }
func (h *hclogger) IsInfo() bool  { return h.enabled(slog.LevelInfo) }
func (h *hclogger) IsWarn() bool  { return h.enabled(slog.LevelWarn) }
func (h *hclogger) IsError() bool { return h.enabled(slog.LevelError) }

func (h *hclogger) ImpliedArgs() []any { return h.args }

func (h *hclogger) With(args ...any) hclog.Logger {
	c := *h
	c.args = append(append([]any(nil), h.args...), args...)
	return &c
}

func (h *hclogger) Name() string { return h.name }

func (h *hclogger) Named(name string) hclog.Logger {
	c := *h
	if h.name != "" {
		name = h.name + "." + name
	}
	c.name = name
	return &c
}

func (h *hclogger) ResetNamed(name string) hclog.Logger {
	c := *h
	c.name = name
	return &c
}

func (h *hclogger) SetLevel(level hclog.Level) { h.level.Set(toSlog(level)) }
func (h *hclogger) GetLevel() hclog.Level      { return fromSlog(h.level.Level()) }

func (h *hclogger) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(h.StandardWriter(opts), "", 0)
}

func (h *hclogger) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return lineWriter{h}
}

// lineWriter sends what the standard library's log writes to the logger,
// one message a write.
type lineWriter struct{ h *hclogger }

func (w lineWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	level := hclog.Info
	for _, l := range []struct {
		tag string
		lv  hclog.Level
	}{{"[ERR]", hclog.Error}, {"[ERROR]", hclog.Error}, {"[WARN]", hclog.Warn}, {"[DEBUG]", hclog.Debug}, {"[TRACE]", hclog.Trace}} {
		if strings.HasPrefix(msg, l.tag) {
			level, msg = l.lv, strings.TrimSpace(msg[len(l.tag):])
			break
		}
	}
	w.h.Log(level, msg)
	return len(p), nil
}
