// Package metrics turns the counters of the SIP side, the switchboard and
// the media clock into Prometheus collectors for the web server's
// /metrics. Those packages know nothing of Prometheus: each exposes a
// stats snapshot, read here at scrape time. Every label value comes from
// the configuration or a small fixed set (methods, status codes, dialplan
// action kinds, origins), never from what a caller dialled or sent.
package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/voxgate/voxgate/bridge"
	"github.com/voxgate/voxgate/events"
	"github.com/voxgate/voxgate/sip"
	"github.com/voxgate/voxgate/switchboard"
)

// SIPSource is what the SIP collector reads (a *sip.Server).
type SIPSource interface {
	ServerStats() sip.ServerStats
	TrunkStates() []sip.TrunkState
	// TrunkHealth and UnreachableContacts are what OPTIONS qualify knows.
	TrunkHealth() map[string]sip.Health
	UnreachableContacts() int
}

// SwitchboardSource is what the switchboard collector reads (a
// *switchboard.Switchboard).
type SwitchboardSource interface {
	Stats() switchboard.Stats
}

// ClockSource is what the clock collector reads (a *bridge.Clock).
type ClockSource interface {
	Stats() bridge.ClockStats
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

// collector is a fixed list of descriptions and a function that sends
// their values.
type collector struct {
	descs   []*prometheus.Desc
	collect func(ch chan<- prometheus.Metric)
}

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v uint64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
}

func histogram(ch chan<- prometheus.Metric, d *prometheus.Desc, h bridge.HistogramSnapshot, labels ...string) {
	ch <- prometheus.MustNewConstHistogram(d, h.Count, h.Sum, h.Buckets, labels...)
}

// SIP collects the SIP side's registrations, transactions, connections and
// request counters, and each configured trunk's registration.
func SIP(src SIPSource) prometheus.Collector {
	var (
		registrations = desc("voxgate_sip_registrations", "Registered SIP contacts.")
		calls         = desc("voxgate_sip_calls", "SIP calls in progress (both directions).")
		requests      = desc("voxgate_sip_requests_total", "SIP requests received, by method (other: a method voxgate does not know).", "method")
		responses     = desc("voxgate_sip_responses_total", "SIP responses voxgate sent, by status code.", "code")
		authFailures  = desc("voxgate_sip_auth_failures_total", "SIP requests with a wrong user or password.")
		malformed     = desc("voxgate_sip_malformed_total", "Malformed SIP requests answered 400.")
		conns         = desc("voxgate_sip_connections", "Open SIP connections over TCP and TLS.")
		connsRefused  = desc("voxgate_sip_connections_refused_total", "SIP connections refused over the caps (sip.stream).")
		fdExhausted   = desc("voxgate_sip_fd_exhausted_total", "Times a connection or a call could not be had for want of file descriptors.")
		acceptErrors  = desc("voxgate_sip_accept_errors_total", "Other failed accepts of SIP connections (retried).")
		transactions  = desc("voxgate_sip_transactions", "SIP server transactions alive.")
		overloaded    = desc("voxgate_sip_overloaded_total", "SIP requests refused 503 over sip.max_transactions.")
		tlsFailed     = desc("voxgate_sip_tls_handshake_failures_total", "TLS connections cut off: their handshake failed or did not finish within sip.tls_handshake_timeout.")
		srtpDropped   = desc("voxgate_sip_srtp_auth_failures_total", "SRTP (kind rtp) and SRTCP (kind rtcp) packets dropped unplayed: failed authentication, replayed, or plain on an SRTP leg.", "kind")
		trunk         = desc("voxgate_trunk_registered", "1 when voxgate is registered at the trunk (a trunk of the config).", "trunk")
		reachable     = desc("voxgate_trunk_reachable", "1 when the trunk answers OPTIONS (or qualify is off), 0 when qualify marked it down.", "trunk")
		qualifyRTT    = desc("voxgate_trunk_qualify_rtt_seconds", "Round trip of the trunk's last answered OPTIONS (trunks qualify has answered only).", "trunk")
		unreachable   = desc("voxgate_sip_contacts_unreachable", "Registered contacts that stopped answering OPTIONS (sip.qualify_contacts); calls do not ring them.")
	)
	return collector{
		descs: []*prometheus.Desc{registrations, calls, requests, responses, authFailures, malformed, conns, connsRefused,
			fdExhausted, acceptErrors, transactions, overloaded, tlsFailed, srtpDropped, trunk, reachable, qualifyRTT, unreachable},
		collect: func(ch chan<- prometheus.Metric) {
			st := src.ServerStats()
			gauge(ch, registrations, float64(st.Registrations))
			gauge(ch, calls, float64(st.Calls))
			for m, n := range st.Requests {
				counter(ch, requests, n, m)
			}
			for code, n := range st.Responses {
				counter(ch, responses, n, strconv.Itoa(code))
			}
			counter(ch, authFailures, st.AuthFailures)
			counter(ch, malformed, st.Malformed)
			gauge(ch, conns, float64(st.Connections))
			counter(ch, connsRefused, st.ConnectionsRefused)
			counter(ch, fdExhausted, st.FDExhausted)
			counter(ch, acceptErrors, st.AcceptErrors)
			gauge(ch, transactions, float64(st.Transactions))
			counter(ch, overloaded, st.Overloaded)
			counter(ch, tlsFailed, st.TLSHandshakeFailures)
			counter(ch, srtpDropped, st.SRTPAuthFailures, "rtp")
			counter(ch, srtpDropped, st.SRTCPAuthFailures, "rtcp")
			for _, t := range src.TrunkStates() {
				v := 0.0
				if t.Registered {
					v = 1
				}
				gauge(ch, trunk, v, t.Name)
			}
			health := src.TrunkHealth()
			for _, t := range src.TrunkStates() {
				h, ok := health[t.Name]
				v := 1.0
				if ok && !h.Reachable {
					v = 0
				}
				gauge(ch, reachable, v, t.Name)
				if ok && h.RTT > 0 {
					gauge(ch, qualifyRTT, h.RTT.Seconds(), t.Name)
				}
			}
			gauge(ch, unreachable, float64(src.UnreachableContacts()))
		},
	}
}

// Switchboard collects the calls, rooms and media: counters over every
// call and leg since start, histograms of call set-up, call duration,
// room ticks and jitter buffer delay.
func Switchboard(src SwitchboardSource) prometheus.Collector {
	var (
		calls     = desc("voxgate_calls", "Routed calls in progress, by origin (user, guest, web, api, trunk:<name>).", "origin")
		routed    = desc("voxgate_calls_total", "Calls routed, by origin and dialplan action.", "origin", "action")
		rejected  = desc("voxgate_calls_rejected_total", "Calls refused, by SIP status.", "status")
		setup     = desc("voxgate_call_setup_seconds", "Time from a call's arrival at the switchboard to its answer (for a dial: the callee's answer), by dialplan action.", "action")
		duration  = desc("voxgate_call_duration_seconds", "Time from a call's answer to its end, observed when it ends, by dialplan action.", "action")
		rooms     = desc("voxgate_rooms", "Rooms somebody is in.")
		legs      = desc("voxgate_room_legs", "Participants in rooms, summed over the rooms.")
		talking   = desc("voxgate_room_talking", "Participants talking now, summed over the rooms.")
		media     = desc("voxgate_media_legs", "Legs whose media the bridge handles now (rooms, 1:1 calls, echo tests).")
		received  = desc("voxgate_rtp_packets_received_total", "RTP packets received by legs while in a room, 1:1 call or echo test.")
		lost      = desc("voxgate_rtp_packets_lost_total", "RTP packets lost on the way in (RFC 3550), summed over every leg since start.")
		concealed = desc("voxgate_frames_concealed_total", "Audio frames concealed for packets lost, late or stretched, over every leg since start.")
		dropped   = desc("voxgate_frames_dropped_total", "Frames not delivered to slow or ended legs, over every leg since start.")
		tick      = desc("voxgate_room_tick_seconds", "Time one 20 ms mixing tick of a room (or 1:1 call) takes.")
		jitter    = desc("voxgate_jitter_buffer_delay_seconds", "Audio held in a leg's jitter buffer, sampled once a second per leg in rooms and 1:1 calls.")
		bots      = desc("voxgate_room_call_streams", "Media streams started on rooms (the bot a participant) and on calls (forks), by kind: room or call.", "kind")
		reconnect = desc("voxgate_room_stream_reconnects_total", "Times a room's media stream connected again after a fault (the bot unreachable or gone).")
	)
	return collector{
		descs: []*prometheus.Desc{calls, routed, rejected, setup, duration, rooms, legs, talking, media, received, lost,
			concealed, dropped, tick, jitter, bots, reconnect},
		collect: func(ch chan<- prometheus.Metric) {
			st := src.Stats()
			for origin, n := range st.Calls {
				gauge(ch, calls, float64(n), origin)
			}
			for _, r := range st.Routed {
				counter(ch, routed, r.Count, r.Origin, r.Action)
			}
			for status, n := range st.Rejected {
				counter(ch, rejected, n, strconv.Itoa(status))
			}
			for action, h := range st.Setup {
				histogram(ch, setup, h, action)
			}
			for action, h := range st.Duration {
				histogram(ch, duration, h, action)
			}
			gauge(ch, rooms, float64(st.Rooms))
			gauge(ch, legs, float64(st.Legs))
			gauge(ch, talking, float64(st.Talking))
			gauge(ch, media, float64(st.Media.Legs))
			counter(ch, received, st.Media.Media.Received)
			counter(ch, lost, st.Media.Media.Lost)
			counter(ch, concealed, st.Media.Media.Concealed)
			counter(ch, dropped, st.Media.Media.Dropped)
			histogram(ch, tick, st.Media.Tick)
			histogram(ch, jitter, st.Media.JitterDelay)
			for kind, n := range st.BotStreams {
				gauge(ch, bots, float64(n), kind)
			}
			counter(ch, reconnect, st.StreamReconnects)
		},
	}
}

// Clock collects the media clock's ticks: those run late (caught up after
// a stall) and those skipped (the clock was more than a second behind).
func Clock(src ClockSource) prometheus.Collector {
	var (
		ticks   = desc("voxgate_clock_ticks_total", "20 ms ticks the media clock ran, summed over its workers.")
		late    = desc("voxgate_clock_ticks_late_total", "Ticks run more than one period late (caught up after a stall).")
		skipped = desc("voxgate_clock_ticks_skipped_total", "Ticks never run: the clock was more than a second behind.")
	)
	return collector{
		descs: []*prometheus.Desc{ticks, late, skipped},
		collect: func(ch chan<- prometheus.Metric) {
			st := src.Stats()
			counter(ch, ticks, st.Ticks)
			counter(ch, late, st.Late)
			counter(ch, skipped, st.Skipped)
		},
	}
}

// WebhookSource is what the webhook metrics read (*events.Webhooks; a nil
// one reads zeros).
type WebhookSource interface {
	Stats() events.Stats
}

// Webhooks collects the webhook deliveries' counters.
func Webhooks(src WebhookSource) prometheus.Collector {
	var (
		published = desc("voxgate_webhook_events_total", "Events queued for at least one webhook endpoint.")
		attempts  = desc("voxgate_webhook_attempts_total", "Webhook delivery attempts, by result: delivered (2xx) or failed (retried, or given up).", "result")
		expired   = desc("voxgate_webhook_given_up_total", "Webhook deliveries given up at the endpoint's max_age.")
		lost      = desc("voxgate_webhook_events_lost_total", "Events lost before the outbox: its queue was full (the store stalled) or could not be written at shutdown.")
	)
	return collector{
		descs: []*prometheus.Desc{published, attempts, expired, lost},
		collect: func(ch chan<- prometheus.Metric) {
			st := src.Stats()
			counter(ch, published, st.Published)
			counter(ch, attempts, st.Delivered, "delivered")
			counter(ch, attempts, st.Failed, "failed")
			counter(ch, expired, st.Expired)
			counter(ch, lost, st.Lost)
		},
	}
}
