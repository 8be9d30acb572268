package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/voxgate/voxgate/stream"
)

// Streams is the collector of media streams to bots (stream.Totals).
func Streams(totals func() stream.Counters) prometheus.Collector {
	var (
		streams = desc("voxgate_bot_streams_total", "Media streams to bots, by outcome: started, refused (the bot could not be reached or refused the handshake), ended (cleanly), failed (the bot went away or sent an oversized message).", "outcome")
		active  = desc("voxgate_bot_streams_active", "Media streams to bots open now.")
		garbage = desc("voxgate_bot_stream_messages_ignored_total", "Messages from bots not understood (ignored) or oversized (the stream ended).", "reason")
		dropped = desc("voxgate_bot_stream_dropped_total", "Audio dropped on media streams: frames of the caller's audio a slow bot did not take in time (to_bot), samples of the bot's audio over its play queue (from_bot) or dropped by a clear or a barge-in (cleared).", "what")
		barge   = desc("voxgate_bot_stream_barge_ins_total", "Times the caller started talking over a bot's queued audio, which was dropped (barge_in).")
		marks   = desc("voxgate_bot_stream_marks_total", "Marks echoed to bots once their audio played.")
		xfers   = desc("voxgate_bot_stream_transfers_total", "Transfer messages from bots: the call went on to the number they asked for.")
	)
	return collector{
		descs: []*prometheus.Desc{streams, active, garbage, dropped, marks, barge, xfers},
		collect: func(ch chan<- prometheus.Metric) {
			st := totals()
			counter(ch, streams, st.Started, "started")
			counter(ch, streams, st.Refused, "refused")
			counter(ch, streams, st.Ended, "ended")
			counter(ch, streams, st.Failed, "failed")
			gauge(ch, active, float64(st.Active))
			counter(ch, garbage, st.Garbage, "garbage")
			counter(ch, garbage, st.Oversized, "oversized")
			counter(ch, dropped, st.SentDropped, "to_bot")
			counter(ch, dropped, st.PlayDropped, "from_bot")
			counter(ch, dropped, st.Cleared, "cleared")
			counter(ch, marks, st.Marks)
			counter(ch, barge, st.BargeIns)
			counter(ch, xfers, st.Transfers)
		},
	}
}
