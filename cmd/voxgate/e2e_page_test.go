package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/voxgate/voxgate/audio"
	"github.com/voxgate/voxgate/cmd/voxgate/internal/peertest"
)

// The softphone, used as a person would with Chromium (clicks and keys):
// sign in, a refused microphone, a number that does not exist, a call to a
// desk phone that hears the page's tone, mute, the phone hanging up, an
// incoming call answered, and the call history's redial. Every screen is
// photographed and checked with axe-core.
func TestPageSoftphone(t *testing.T) {
	peertest.Need(t, "chromium", "ip", "baresip")
	ns := peertest.NewNetns(t)
	base, _, sipAddr := browserGatewayWithSIP(t, ns, true)
	const pageTone, phoneTone = 600.0, 1000.0
	wav := filepath.Join(t.TempDir(), "mic.wav")
	peertest.ToneWAV(t, wav, 48000, pageTone, 120)
	bob := peertest.StartPhone(t, sipAddr, peertest.Phone{User: "bob", Password: "bob-secret", Codec: "pcmu", Tone: phoneTone, Register: true})

	br := startBrowser(t, ns, base, wav)
	t.Logf("screenshots in %s", br.shots)
	br.open(base + "/")
	br.waitText("#login", "Sign in")
	br.screen("01-sign-in")
	if errs := br.consoleErrors(); len(errs) > 0 {
		t.Errorf("console errors on a first load: %q", errs)
	}

	// A wrong password says so.
	br.typeInto("#user", "alice")
	br.typeInto("#password", "nope\r")
	br.waitText("#error", "Wrong user or password.")
	br.clearErrors() // the browser logs the 401 of a wrong password
	br.run(setValue("#password", ""))
	br.typeInto("#password", "alice-secret\r")
	br.waitText("#status", "Ready to call")
	br.waitJS("an empty call history", `document.querySelector("#historyempty").offsetParent !== null`)
	br.screen("02-ready")
	if errs := br.consoleErrors(); len(errs) > 0 {
		t.Errorf("console errors after signing in: %q", errs)
	}

	// Typed digits go to the number; the keypad is 3 x 4.
	br.run(blur())
	br.keys("55")
	br.click(`#pad button[data-digit="5"]`)
	if got := br.js(`document.querySelector("#number").value`); got != "555" {
		t.Fatalf("typed and clicked 5 5 5: the number is %q", got)
	}
	if cols := br.js(`getComputedStyle(document.querySelector("#pad")).gridTemplateColumns.split(" ").length + "x" + document.querySelectorAll("#pad button").length`); cols != "3x12" {
		t.Fatalf("the keypad is %s (columns x keys), want 3x12", cols)
	}

	// A refused microphone says how to allow it, and nothing is stale.
	br.run(grantMic(base, false))
	br.click("#call")
	br.waitText("#error", "The microphone is blocked. Allow it for this site")
	br.waitText("#status", "Ready to call")
	br.screen("03-microphone-refused")
	br.run(grantMic(base, true))

	// 555 is no number: "not found", and the page is ready again.
	br.click("#call")
	br.waitText("#error", "Number 555 not found.")
	br.waitText("#status", "Ready to call")
	if br.text("#mute") != "" || br.text("#hangup") != "" {
		t.Fatalf("after a refused call the page still shows %q %q", br.text("#mute"), br.text("#hangup"))
	}
	br.screen("04-not-found")

	// Call bob's desk phone: it answers, hears the page's tone; the page
	// shows the timer, the codec and the quality; mute shows its state.
	br.run(setValue("#number", ""))
	br.typeInto("#number", "bob\r")
	br.waitText("#status", "In a call with bob")
	br.waitJS("the call timer running", `/^0:0[1-9]/.test(document.querySelector("#timer").innerText)`)
	br.waitText("#codec", "Codec: ")
	br.waitText("#quality", "Quality: ")
	br.waitJS("a microphone level", `Number(document.querySelector("#level").getAttribute("aria-valuenow")) > 20`)
	if !bob.WaitFor("Call established", 10*time.Second) {
		t.Fatalf("bob's phone never answered:\n%s", bob.Output())
	}
	br.screen("05-in-call")
	br.click("#mute")
	br.waitJS("mute pressed", `document.querySelector("#mute").getAttribute("aria-pressed") === "true"`)
	br.waitText("#mute", "Microphone muted: unmute")
	br.waitJS("a silent level meter", `document.querySelector("#level").getAttribute("aria-valuenow") === "0"`)
	br.screen("06-muted")
	// The phone hangs up: the page says so, and mute is reset.
	bob.Command("hangup", "")
	br.waitText("#status", "Call ended: the other side hung up.")
	if br.text("#mute") != "" || br.js(`document.querySelector("#mute").getAttribute("aria-pressed")`) != "false" {
		t.Fatalf("after the call mute shows %q, pressed %s", br.text("#mute"), br.js(`document.querySelector("#mute").getAttribute("aria-pressed")`))
	}
	if strings.Contains(br.text("body"), "voxgate") && strings.Contains(br.text("#status"), "by voxgate") {
		t.Fatalf("the page blames voxgate for the phone's hang-up: %q", br.text("#status"))
	}
	heard := bob.HeardSeconds(pageTone, 0)
	t.Logf("bob's phone heard the page's %.0f Hz for %.1f s", pageTone, heard)
	if heard < 1 {
		t.Fatalf("bob's phone heard the page's tone for %.1f s", heard)
	}

	// bob calls the page (a second phone of bob's): it rings with Answer and
	// Reject and the caller's name; answered, the call runs; the page hangs up.
	bob.Stop() // unregisters
	bob2 := peertest.StartPhone(t, sipAddr, peertest.Phone{User: "bob", Password: "bob-secret", Codec: "pcmu", Tone: phoneTone, Register: true})
	// The tab is hidden (as behind another tab): the page raises a
	// notification. The browser's Notification is replaced by one that
	// records, so this checks the page's part, not the desktop's.
	br.run(chromedp.Evaluate[chromedp.Void](`Object.defineProperty(document, "hidden", {get: () => true, configurable: true});
		window.__notes = []; window.Notification = function (title, o) { window.__notes.push(title + ": " + o.body); this.close = () => {}; };
		window.Notification.permission = "granted";`))
	bob2.Command("dial", "sip:alice@"+sipAddr)
	br.waitText("#ring", "bob is calling")
	br.waitJS("a notification", `window.__notes.join() === "Incoming call: bob is calling"`)
	br.run(chromedp.Evaluate[chromedp.Void](`delete document.hidden`))
	br.screen("07-incoming")
	// Answered from the keyboard: the ring puts the focus on Answer.
	br.waitJS("the focus on Answer", `document.activeElement === document.querySelector("#accept")`)
	br.keys("\r")
	br.waitText("#status", "In a call with bob")
	br.waitJS("the call timer running", `/^0:0[1-9]/.test(document.querySelector("#timer").innerText)`)
	br.click("#hangup")
	br.waitText("#status", "You hung up after 0:0")
	if !bob2.WaitFor("closed", 10*time.Second) {
		t.Fatalf("bob's second phone's call did not end:\n%s", bob2.Output())
	}

	// bob signs in on a page of his own (his phone gone) and rejects
	// alice's call: she hears he is busy.
	bob2.Stop()
	bobPage := br.tab()
	bobPage.open(base + "/")
	bobPage.typeInto("#user", "bob")
	bobPage.typeInto("#password", "bob-secret\r")
	bobPage.waitText("#status", "Ready to call")
	br.run(setValue("#number", ""))
	br.typeInto("#number", "bob\r")
	bobPage.waitText("#ring", "alice is calling")
	bobPage.click("#decline")
	bobPage.waitText("#status", "You rejected the call from alice.")
	br.waitText("#error", "bob is busy. Try again later.")
	br.waitText("#status", "Ready to call")
	br.screen("08a-busy")

	// The history lists the calls; "Call again" redials.
	br.waitJS("four calls in the history", `document.querySelectorAll("#history li").length >= 4`)
	hist := br.text("#history")
	for _, want := range []string{"To 555", "To bob", "From bob"} {
		if !strings.Contains(hist, want) {
			t.Errorf("the history lacks %q:\n%s", want, hist)
		}
	}
	br.screen("08-history")
	// The microphone chosen is remembered across a reload.
	br.waitJS("microphones listed", `document.querySelectorAll("#mic option").length > 1`)
	mic := br.js(`document.querySelector("#mic option:last-child").value`)
	br.click("#devices summary")
	br.run(setValue("#mic", mic), chromedp.Evaluate[chromedp.Void](`document.querySelector("#mic").dispatchEvent(new Event("change"))`))
	br.screen("09-devices")
	br.run(chromedp.Reload())
	br.waitText("#status", "Ready to call")
	br.waitJS("the chosen microphone after a reload", fmt.Sprintf(`document.querySelector("#mic").value === %q`, mic))

	// The connection drops: the page says it reconnects, and does.
	br.run(chromedp.Evaluate[chromedp.Void](`vg.ws.close()`))
	br.waitText("#conn", "The connection to voxgate was lost: reconnecting")
	br.waitText("#conn", "Connected again.")
	br.waitJS("the call history after the reload", `document.querySelectorAll("#history li").length >= 3`)
	br.click(`#history button[aria-label="Call 555 again"]`)
	br.waitText("#error", "Number 555 not found.")
	if errs := br.consoleErrors(); len(errs) > 0 {
		t.Errorf("console errors: %q", errs)
	}
	fmt.Println("screenshots:", br.shots)
}

// A room and its moderator console, used as people would: participants
// keyed by leg (a page and a desk phone both called alice are two), talking
// highlights from the server's talk events, a moderator's mute that the
// others hear (the muted phone's tone stops reaching a third participant)
// and the page shows, lock, recording, a guest link opened by a guest who
// is then removed, and a dial-out that fails with a clear message.
func TestPageRoomAndModerator(t *testing.T) {
	peertest.Need(t, "chromium", "ip", "baresip")
	ns := peertest.NewNetns(t)
	base, _, sipAddr := browserGatewayWithSIP(t, ns, true, func(cfg *Config) {
		cfg.Rooms.RecordDir = t.TempDir()
	})
	const pageTone, aliceTone, carolTone = 440.0, 700.0, 1130.0
	wav := filepath.Join(t.TempDir(), "mic.wav")
	peertest.ToneWAV(t, wav, 48000, pageTone, 120)
	peertest.StartPhone(t, sipAddr, peertest.Phone{User: "alice", Password: "alice-secret", Codec: "pcmu", Tone: aliceTone, Dial: "8001"})
	carol := peertest.StartPhone(t, sipAddr, peertest.Phone{User: "carol", Codec: "pcmu", Tone: carolTone, Dial: "8001"})
	carolIn := time.Now()

	br := startBrowser(t, ns, base, wav)
	t.Logf("screenshots in %s", br.shots)
	br.open(base + "/")
	br.typeInto("#user", "alice")
	br.typeInto("#password", "alice-secret\r")
	br.waitText("#status", "Ready to call")
	br.typeInto("#number", "8001")
	br.click("#join")
	br.waitText("#status", "In room 001")
	br.waitJS("three participants", `document.querySelectorAll("#people li").length === 3`)
	names := br.js(`[...document.querySelectorAll("#people li .name")].map((e) => e.textContent).sort().join(",")`)
	if names != "alice,alice (you),carol" {
		t.Fatalf("the room lists %q, want alice, alice (you) and carol", names)
	}
	phoneLeg := br.js(`[...document.querySelectorAll("#people li")].find((li) => li.querySelector(".name").textContent === "alice").dataset.leg`)
	if me := br.js(`vg.legOf(current.id)`); phoneLeg == me || !strings.Contains(br.text(`#people li[data-leg="`+phoneLeg+`"]`), "phone") {
		t.Fatalf("the desk phone alice is leg %q (the page is %q) and shows %q", phoneLeg, me, br.text(`#people li[data-leg="`+phoneLeg+`"]`))
	}
	phoneLi := `#people li[data-leg="` + phoneLeg + `"]`
	br.waitJS("the desk phone alice talking", `document.querySelector('`+phoneLi+`').classList.contains("talking")`)
	br.waitJS("the desk phone's reception (no token needed)", `/PCMU, loss \d+\.\d %, jitter \d+ ms/.test(document.querySelector('`+phoneLi+`').innerText)`)
	br.screen("10-room")
	// The history is alice's own: her page's and her desk phone's calls to
	// the room (a user's calls from every device), not carol's.
	br.waitJS("both of alice's room calls in the history", `document.querySelector("#history").innerText.split("To 8001 (room 001)").length === 3`)
	if h := br.text("#history"); strings.Count(h, "8001") != 2 || strings.Contains(h, "carol") {
		t.Fatalf("alice's history shows others' calls:\n%s", h)
	}

	// The moderator console with the operator's token.
	br.click("#moddetails summary")
	br.typeInto("#modtoken", "demo-api-token\r")
	br.waitText("#modrooms", "Room 001 · 3 people")
	modLeg := `#modrooms .modleg[data-leg="` + phoneLeg + `"]`
	br.screen("11-moderator")
	br.click(modLeg + ` button[aria-label="Mute alice"]`)
	br.waitJS("the phone shown muted", `document.querySelector('`+phoneLi+`').innerText.includes("muted")`)
	mutedAt := time.Now()
	br.waitJS("the phone no longer talking", `!document.querySelector('`+phoneLi+`').classList.contains("talking")`)
	br.waitText(modLeg, "Unmute")
	br.click(`#modrooms button[aria-label="Lock room 001"]`)
	br.waitText("#modrooms", "locked")
	// rooms.record_dir records every room from its first participant.
	br.waitText("#mr-001 h3", "recording")
	br.click(`#modrooms button[aria-label="Stop recording room 001"]`)
	br.waitJS("the recording stopped", `!document.querySelector("#mr-001 h3").innerText.includes("recording")`)
	br.click(`#modrooms button[aria-label="Start recording room 001"]`)
	br.waitText("#mr-001 h3", "recording")
	br.screen("12-moderator-locked-recording")
	br.click(`#modrooms button[aria-label="Unlock room 001"]`)
	br.waitJS("the room unlocked", `!document.querySelector("#mr-001 h3").innerText.includes("locked")`)

	// carol heard the phone alice until the mute, and not after it.
	time.Sleep(3 * time.Second) // audio to judge after the mute (the check below decides)
	carol.Stop()
	w := carol.Received()
	at := func(d time.Duration) int { return min(len(w.Samples), max(0, int(d.Seconds()*float64(w.Rate)))) }
	muteOff := mutedAt.Sub(carolIn)
	before := w.Samples[at(muteOff-2500*time.Millisecond):at(muteOff-500*time.Millisecond)]
	after := w.Samples[at(muteOff+time.Second):at(muteOff+2500*time.Millisecond)]
	hb, ha := audio.ToneSeconds(before, w.Rate, aliceTone, 0.2), audio.ToneSeconds(after, w.Rate, aliceTone, 0.2)
	hp := audio.ToneSeconds(w.Samples, w.Rate, pageTone, 0.2)
	t.Logf("carol heard alice's phone %.1f s of 2 before the mute, %.1f s of 1.5 after; the page %.1f s", hb, ha, hp)
	if hb < 1 || ha > 0.2 || hp < 1 {
		t.Fatalf("carol heard alice's phone %.1f s before the mute and %.1f s after, the page %.1f s", hb, ha, hp)
	}

	// A guest link: a guest opens it, gives a name, joins; the moderator
	// removes the guest.
	br.click(`#modrooms button[aria-label="Make a guest link for room 001"]`)
	br.waitJS("a guest link", `document.querySelector("#mr-001-link").value.includes("?guest=")`)
	link := br.js(`document.querySelector("#mr-001-link").value`)
	guest := br.tab()
	guest.open(link)
	guest.waitText("#guestform", "Join room 001 as a guest")
	guest.screen("13-guest-name")
	guest.typeInto("#guestname", "Gina\r")
	guest.waitText("#status", "In room 001")
	guest.waitJS("the guest sees the room", `document.querySelectorAll("#people li").length === 3`)
	guest.screen("14-guest-in-room")
	br.waitJS("Gina in alice's list", `[...document.querySelectorAll("#people li")].some((li) => li.innerText.includes("Gina") && li.innerText.includes("browser"))`)
	// alice mutes her page: the guest sees her page muted, then not.
	alicePage := `[...document.querySelectorAll("#people li")].find((li) => li.innerText.includes("alice") && li.innerText.includes("browser"))`
	br.click("#mute")
	guest.waitJS("alice's page shown muted", alicePage+`.innerText.includes("muted")`)
	br.click("#mute")
	guest.waitJS("alice's page shown unmuted", `!`+alicePage+`.innerText.includes("muted")`)
	br.waitText("#modrooms", "Gina")
	br.click(`#modrooms button[aria-label="Remove Gina from the room"]`)
	guest.waitText("#status", "A moderator removed you from room 001.")
	guest.waitText("#join", "Join room 001 again")
	guest.screen("15-guest-removed")
	br.waitJS("Gina gone from alice's list", `![...document.querySelectorAll("#people li")].some((li) => li.innerText.includes("Gina"))`)

	// bob calls the moderated bridge (7001) and does not know its PIN: the
	// console lets him in at the PIN; there he waits for a moderator who
	// does not come, and the console lets him in again.
	peertest.StartPhone(t, sipAddr, peertest.Phone{User: "bob", Password: "bob-secret", Codec: "pcmu", Tone: 1000, Dial: "7001"})
	br.waitText("#mr-pin", "bob · at the PIN of room board")
	br.screen("15a-moderator-pin")
	br.click(`#mr-pin button[aria-label="Let bob into room board without the PIN"]`)
	br.waitText("#mr-board", "waiting for a moderator")
	br.screen("15b-moderator-waiting")
	br.click(`#mr-board button[aria-label="Admit bob now (without a moderator)"]`)
	br.waitJS("bob no longer waiting", `!document.querySelector("#mr-board").innerText.includes("waiting")`)

	// The desk phone alice moves to room 002: it leaves the page's room.
	br.typeInto(`#mr-001 .modleg[data-leg="`+phoneLeg+`"] input.moveto`, "002")
	br.click(modLeg + ` button[aria-label="Move alice to the room typed"]`)
	br.waitText("#mr-002", "alice")
	br.waitJS("the moved phone gone from the page's room", `!document.querySelector('`+phoneLi+`')`)
	if !strings.Contains(br.text("#mr-001 h3"), "1 person") { // the page (carol and the guest left)
		t.Fatalf("after the move room 001 shows %q", br.text("#mr-001 h3"))
	}
	if errs := br.consoleErrors(); len(errs) > 0 {
		t.Errorf("console errors: %q", errs)
	}
	// Calling somebody in who cannot be reached says why.
	br.typeInto("#mr-001-dial", "bob\r")
	br.waitText("#error", `user "bob" has no open page and no registered phone`)
	br.screen("16-moderator-dial-failed")
	if errs := guest.consoleErrors(); len(errs) > 0 {
		t.Errorf("console errors of the guest's page: %q", errs)
	}
}

// A page that keys the moderator PIN on its keypad moderates its room from
// the participants list, without a token: the desk phone that waited for a
// moderator is let in and hears the page; the page mutes it, locks the room
// and removes it.
func TestPageModeratesItsRoom(t *testing.T) {
	peertest.Need(t, "chromium", "ip", "baresip")
	ns := peertest.NewNetns(t)
	records := t.TempDir()
	base, _, sipAddr := browserGatewayWithSIP(t, ns, true, func(cfg *Config) { cfg.Rooms.RecordDir = records })
	const pageTone = 600.0
	wav := filepath.Join(t.TempDir(), "mic.wav")
	peertest.ToneWAV(t, wav, 48000, pageTone, 120)
	// The default dialplan's 7001: PIN 1111 waits for a moderator (9999).
	bob := peertest.StartPhone(t, sipAddr, peertest.Phone{User: "bob", Password: "bob-secret", Codec: "pcmu", Tone: 1000, Dial: "7001"})
	time.Sleep(time.Second) // the PIN prompt
	bob.Command("sndcode", "1111#")
	waitFor(t, "bob waiting for a moderator", 10*time.Second, func() bool { return strings.Contains(logsOf(t), "waiting for a moderator") })

	br := startBrowser(t, ns, base, wav)
	br.open(base + "/")
	br.typeInto("#user", "alice")
	br.typeInto("#password", "alice-secret\r")
	br.waitText("#status", "Ready to call")
	br.typeInto("#number", "7001\r")
	br.waitText("#status", "In a call with 7001")
	for _, d := range "9999#" {
		br.click(fmt.Sprintf(`#pad button[data-digit="%c"]`, d))
	}
	br.waitText("#status", "In room board")
	br.waitText("#roommod", "You moderate this room.")
	br.waitJS("bob listed, not muted", `[...document.querySelectorAll("#people li")].some((li) => li.innerText.includes("bob") && !li.innerText.includes("muted"))`)
	br.screen("17-room-moderator")
	br.click(`#people button[aria-label="Mute bob"]`)
	br.waitJS("bob shown muted", `[...document.querySelectorAll("#people li")].some((li) => li.innerText.includes("bob") && li.innerText.includes("muted"))`)
	br.click("#roomlock")
	br.waitText("#status", "You locked room board: nobody else can join.")
	if br.js(`document.querySelector("#roomlock").getAttribute("aria-pressed")`) != "true" {
		t.Fatal("the lock button is not pressed after locking")
	}
	// rooms.record_dir records every room from its first participant: the
	// page stops the recording, then starts it again.
	br.waitText("#roomrecord", "Stop recording")
	br.click("#roomrecord")
	br.waitText("#status", "The recording of room board stopped.")
	br.click("#roomrecord")
	br.waitText("#status", "Room board is being recorded.")
	if files, _ := filepath.Glob(filepath.Join(records, "room-board-*.wav")); len(files) != 2 {
		t.Fatalf("recordings of the board: %v, want two", files)
	}
	br.click(`#people button[aria-label="Remove bob from the room"]`)
	if !bob.WaitFor("closed", 10*time.Second) {
		t.Fatalf("bob's call did not end when removed:\n%s", bob.Output())
	}
	br.waitJS("bob gone from the list", `![...document.querySelectorAll("#people li")].some((li) => li.innerText.includes("bob"))`)
	heard := bob.HeardSeconds(pageTone, 0)
	t.Logf("bob heard the moderating page's %.0f Hz for %.1f s", pageTone, heard)
	if heard < 0.5 {
		t.Fatalf("bob heard the page for %.1f s once let in", heard)
	}
	if errs := br.consoleErrors(); len(errs) > 0 {
		t.Errorf("console errors: %q", errs)
	}
}
