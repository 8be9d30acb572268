package logging

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// pion's levels are chattier than voxgate's: each is logged one step down, so
// its Info (ICE candidate pairs, DTLS steps) shows only at debug, and its
// Debug and Trace (per-packet details) not even there.
const (
	PionError = slog.LevelWarn
	PionWarn  = slog.LevelInfo
	PionInfo  = slog.LevelDebug
	PionDebug = slog.LevelDebug - 4
	PionTrace = slog.LevelDebug - 8
)

// Pion returns a pion logging.LoggerFactory (for webrtc.SettingEngine)
// writing to log, each line with "component" "pion" and pion's "scope"
// (ice, dtls, sctp, ...), at the levels above.
func Pion(log *slog.Logger) logging.LoggerFactory {
	return pionFactory{log: log.With("component", "pion")}
}

type pionFactory struct{ log *slog.Logger }

func (f pionFactory) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{log: f.log.With("scope", scope)}
}

// pionLogger is a pion LeveledLogger on slog.
type pionLogger struct{ log *slog.Logger }

var _ logging.LeveledLogger = pionLogger{}

func (l pionLogger) logf(level slog.Level, format string, args ...any) {
	ctx := context.Background()
	if !l.log.Enabled(ctx, level) {
		return // no formatting for lines nobody reads
	}
	l.log.Log(ctx, level, fmt.Sprintf(format, args...))
}

func (l pionLogger) Trace(msg string)                  { l.logf(PionTrace, "%s", msg) }
func (l pionLogger) Tracef(format string, args ...any) { l.logf(PionTrace, format, args...) }
func (l pionLogger) Debug(msg string)                  { l.logf(PionDebug, "%s", msg) }
func (l pionLogger) Debugf(format string, args ...any) { l.logf(PionDebug, format, args...) }
func (l pionLogger) Info(msg string)                   { l.logf(PionInfo, "%s", msg) }
func (l pionLogger) Infof(format string, args ...any)  { l.logf(PionInfo, format, args...) }
func (l pionLogger) Warn(msg string)                   { l.logf(PionWarn, "%s", msg) }
func (l pionLogger) Warnf(format string, args ...any)  { l.logf(PionWarn, format, args...) }
func (l pionLogger) Error(msg string)                  { l.logf(PionError, "%s", msg) }
func (l pionLogger) Errorf(format string, args ...any) { l.logf(PionError, format, args...) }
