package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/voxgate/voxgate/audio"
	"github.com/voxgate/voxgate/cmd/voxgate/internal/peertest"
	"github.com/voxgate/voxgate/sip"
)

// kamailioTLSConfig is a carrier: a registrar over TLS that routes a call
// to a registered number down the connection it registered on
// (fix_nated_register: the source address is where it is reached).
const kamailioTLSConfig = `#!KAMAILIO
debug=2
log_stderror=yes
fork=yes
children=1
tcp_children=1
auto_aliases=no
enable_tls=yes
tcp_connection_lifetime=3605
listen=udp:127.0.0.1:%[1]d
listen=tls:127.0.0.1:%[2]d
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "kex.so"
loadmodule "corex.so"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "nathelper.so"
loadmodule "tls.so"
modparam("tls", "config", "%[3]s")
modparam("usrloc", "db_mode", 0)
modparam("registrar", "received_avp", "$avp(RECEIVED)")
modparam("nathelper", "received_avp", "$avp(RECEIVED)")
request_route {
	if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
	if (is_method("REGISTER")) {
		fix_nated_register();
		if (!save("location")) { sl_reply_error(); }
		exit;
	}
	if (has_totag()) {
		if (loose_route()) { t_relay(); exit; }
		if (is_method("ACK") && t_check_trans()) { t_relay(); }
		exit;
	}
	if (is_method("CANCEL")) { if (t_check_trans()) { t_relay(); } exit; }
	record_route();
	if (!lookup("location")) { sl_send_reply("404", "Not Found"); exit; }
	xlog("L_INFO", "carrier: $rm to $ru via $du\n");
	t_relay();
}
`

const kamailioTLSFile = `[server:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
certificate = %s
private_key = %s

[client:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
`

// Kamailio as a carrier over TLS: voxgate registers to it over TLS
// (checking its certificate against a private CA by name), calls a number
// through it, and Kamailio sends that call back to voxgate down the
// registration's connection, where the dialplan answers it with the echo:
// audio goes out and comes back across both TLS legs.
func TestKamailioTLSCarrier(t *testing.T) {
	peertest.Need(t, "kamailio")
	if _, err := os.Stat("/usr/lib/x86_64-linux-gnu/kamailio/modules/tls.so"); err != nil {
		t.Fatal("Kamailio's tls module is missing (Debian kamailio-tls-modules)")
	}
	caFile, cert, key := testCerts(t)
	dir := t.TempDir()
	ports := peertest.FreePorts(t, 2)
	tlsCfg := filepath.Join(dir, "tls.cfg")
	if err := os.WriteFile(tlsCfg, []byte(fmt.Sprintf(kamailioTLSFile, cert, key)), 0o644); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "kamailio.cfg")
	if err := os.WriteFile(cfgFile, []byte(fmt.Sprintf(kamailioTLSConfig, ports, ports+1, tlsCfg)), 0o644); err != nil {
		t.Fatal(err)
	}
	kamOut := startKamailio(t, dir, cfgFile)

	plan := writePlan(t, `
contexts:
  internal:
    rules:
      - reject: {status: 404, reason: "Not Found"}
  from-carrier:
    rules:
      - number: "4930123"
        echo: {}
origins:
  user: internal
  trunks:
    carrier: from-carrier
`)
	g := startGateway(t, func(cfg *Config) {
		cfg.Dialplan = plan
		cfg.SIP.Trunks = []sip.TrunkConfig{{Name: "carrier", Registrar: fmt.Sprintf("sip:localhost:%d;transport=tls", ports+1),
			TLSCAFile: caFile, Username: "4930123", Password: "unused", Expires: 120, RetryMax: 500 * time.Millisecond,
			InboundCIDRs: []string{"127.0.0.1"}}}
	})
	deadline := time.Now().Add(15 * time.Second)
	for !g.srv.TrunkStates()[0].Registered && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if st := g.srv.TrunkStates()[0]; !st.Registered {
		t.Fatalf("no registration at Kamailio over TLS: %+v", st)
	}

	// A second voxgate calls the number through Kamailio over TLS (one
	// instance calling itself would see both legs under one Call-ID).
	caller := startGateway(t, func(cfg *Config) {
		f := false
		cfg.SIP.Trunks = []sip.TrunkConfig{{Name: "carrier", Registrar: fmt.Sprintf("sips:localhost:%d", ports+1),
			TLSCAFile: caFile, Register: &f}}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := caller.srv.DialTrunk(ctx, "carrier", "4930123", sip.DialOptions{})
	if err != nil {
		t.Fatalf("call through Kamailio: %v", err)
	}
	tone := audio.Tone{Rate: 8000, Freq: 700, Level: 0.5}
	f := audio.Frame{Rate: 8000, Samples: make([]int16, 160)}
	tick := time.NewTicker(20 * time.Millisecond)
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); <-tick.C {
		tone.Fill(f.Samples)
		if err := c.WriteFrame(&f); err != nil {
			t.Fatal(err)
		}
	}
	tick.Stop()
	time.Sleep(300 * time.Millisecond)
	out := c.Stats()
	c.Hangup(ctx)
	t.Logf("the call out: rx %d tx %d packets", out.PacketsReceived, out.PacketsSent)
	if out.PacketsReceived < 80 {
		t.Fatalf("the echo did not come back through Kamailio: %d packets", out.PacketsReceived)
	}
	logs := g.log.String()
	if !strings.Contains(logs, "origin=trunk:carrier") || !strings.Contains(logs, "source=tls:127.0.0.1:") {
		t.Fatalf("the call did not come back in from the carrier over TLS")
	}
	deadline = time.Now().Add(5 * time.Second)
	for g.router.ended() == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	in, ok := g.router.lastStats()
	if !ok {
		t.Fatal("the call in through Kamailio did not end after the caller's BYE")
	}
	if in.PacketsReceived < 80 {
		t.Fatalf("the echo leg received %d packets", in.PacketsReceived)
	}
	if !strings.Contains(kamOut.String(), "transport=tls") && !strings.Contains(kamOut.String(), "tls:127.0.0.1") {
		t.Errorf("Kamailio did not route the call over TLS:\n%s", kamOut.String())
	}
	// Kamailio's certificate names localhost: a wrong tls_server_name is refused.
	g2 := startGateway(t, func(cfg *Config) {
		cfg.SIP.Trunks = []sip.TrunkConfig{{Name: "carrier", Registrar: fmt.Sprintf("sip:localhost:%d;transport=tls", ports+1),
			TLSServerName: "carrier.example", TLSCAFile: caFile, Username: "4930124", Password: "unused", RetryMax: time.Second}}
	})
	deadline = time.Now().Add(5 * time.Second)
	for g2.srv.TrunkStates()[0].Attempts == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if st := g2.srv.TrunkStates()[0]; st.Registered || !strings.Contains(st.LastError, "not carrier.example") {
		t.Fatalf("a wrong tls_server_name at Kamailio: %+v", st)
	}
}

// startKamailio runs kamailio in the foreground on cfg (with -A defines
// args), its pid file and working files in dir, until the test ends (its
// process group killed), and returns its output (logged when the test
// failed).
func startKamailio(t *testing.T, dir, cfg string, args ...string) *peertest.SyncBuffer {
	t.Helper()
	return startKamailioIn(t, nil, dir, cfg, args...)
}

// startKamailioIn is startKamailio inside the network namespace ns (nil:
// the host's network).
func startKamailioIn(t *testing.T, ns *peertest.Netns, dir, cfg string, args ...string) *peertest.SyncBuffer {
	t.Helper()
	args = append([]string{"-DD", "-E", "-f", cfg, "-Y", dir, "-P", filepath.Join(dir, "kamailio.pid")}, args...)
	kam := exec.Command("kamailio", args...)
	if ns != nil {
		kam = ns.Command(context.Background(), "kamailio", args...)
	}
	out := &peertest.SyncBuffer{}
	kam.Stdout, kam.Stderr = out, out
	kam.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its children go with it
	kam.WaitDelay = 2 * time.Second
	if err := kam.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-kam.Process.Pid, syscall.SIGKILL)
		_ = kam.Wait()
		if t.Failed() {
			t.Logf("kamailio output:\n%s", tail(out.String(), 150))
		}
	})
	return out
}
