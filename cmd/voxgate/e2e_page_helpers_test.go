package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/voxgate/voxgate/cmd/voxgate/internal/peertest"
)

// axe-core 4.10.3 (MPL-2.0, testdata/axe/LICENSE), vendored so that the
// accessibility check runs offline and the same everywhere.
//
//go:embed testdata/axe/axe.min.js
var axeJS string

// browser is headless Chromium in the test's network namespace, driven
// over its DevTools pipe (chromedp): a user's clicks and keys.
type browser struct {
	t      *testing.T
	ctx    context.Context // the browser's first tab
	shots  string          // where screenshots go
	origin string          // the page's origin
	mu     sync.Mutex
	errs   []string // console errors and failed loads of the page
}

// startBrowser runs Chromium in ns with a fake microphone playing wav. The
// page at origin may use the microphone over plain HTTP.
func startBrowser(t *testing.T, ns *peertest.Netns, origin, wav string) *browser {
	t.Helper()
	ip, err := exec.LookPath("ip")
	if err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath("chromium"),
		chromedp.Flag("headless", "new"), chromedp.Flag("no-sandbox", true), chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true), chromedp.Flag("use-fake-device-for-media-stream", true), chromedp.Flag("use-file-for-fake-audio-capture", wav),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true), chromedp.NoFirstRun,
		chromedp.Flag("hide-scrollbars", true), chromedp.Flag("force-device-scale-factor", "1"),
		chromedp.Flag("unsafely-treat-insecure-origin-as-secure", origin),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE "+ns.IP),
		chromedp.UserDataDir(t.TempDir()),
		// Chromium runs inside the namespace: `ip netns exec` execs it in
		// place, keeping the DevTools pipe (fds 3 and 4).
		chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
			cmd.Path = ip
			cmd.Args = append([]string{"ip", "netns", "exec", ns.Name, "chromium"}, cmd.Args[1:]...)
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		}),
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	shots := os.Getenv("VOXGATE_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	b := &browser{t: t, shots: shots}
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithListener(b.listen))
	b.ctx = ctx
	t.Cleanup(func() {
		cancel() // closes the browser and waits for it
		acancel()
	})
	// The first run starts the browser and lives as long as it: no timeout.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("chromium did not start: %v", err)
	}
	b.origin = origin
	b.run(grantMic(origin, true)) // as a person who allowed it once
	return b
}

// tab opens a tab of its own profile (cookies apart: another person).
func (b *browser) tab() *browser {
	nb := &browser{t: b.t, shots: b.shots}
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext(), chromedp.WithListener(nb.listen))
	b.t.Cleanup(cancel)
	nb.ctx = ctx
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		b.t.Fatal(err)
	}
	nb.origin = b.origin
	nb.run(grantMic(b.origin, true))
	return nb
}

// listen records the page's console errors and failed loads.
func (b *browser) listen(ev any) {
	var msg string
	switch e := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if e.Type != runtime.ConsoleAPICalledTypeError {
			return
		}
		var parts []string
		for _, a := range e.Args {
			parts = append(parts, strings.Trim(string(a.Value), `"`)+a.Description)
		}
		msg = "console.error: " + strings.Join(parts, " ")
	case *runtime.EventExceptionThrown:
		msg = "exception: " + e.ExceptionDetails.Text
		if e.ExceptionDetails.Exception != nil {
			msg += " " + e.ExceptionDetails.Exception.Description
		}
	case *cdplog.EventEntryAdded:
		if e.Entry.Level != cdplog.EntryLevelError {
			return
		}
		msg = "log: " + e.Entry.Text + " " + e.Entry.URL
	default:
		return
	}
	b.mu.Lock()
	b.errs = append(b.errs, msg)
	b.mu.Unlock()
}

// call runs a DevTools command as a step.
func call[P any](cmd cdp.Command[P, cdp.Empty], params P) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, cmd, params)
		return err
	})
}

// scheme emulates prefers-color-scheme.
func scheme(s string) chromedp.Action[chromedp.Void] {
	return call(emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: s}}})
}

// open loads url at the desktop size, in light colours.
func (b *browser) open(url string) {
	b.t.Helper()
	b.run(call(cdplog.Enable, cdp.Empty{}), scheme("light"), chromedp.EmulateViewport(1280, 900), chromedp.Navigate(url))
}

// clearErrors forgets the errors so far (an expected failure's).
func (b *browser) clearErrors() {
	b.mu.Lock()
	b.errs = nil
	b.mu.Unlock()
}

// consoleErrors returns what the page logged as errors so far.
func (b *browser) consoleErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errs...)
}

func (b *browser) run(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

// js evaluates a JavaScript expression and returns its value as a string.
func (b *browser) js(expr string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`String(`+expr+`)`))
	if err != nil {
		b.t.Fatalf("browser: %s: %v", expr, err)
	}
	return v
}

// text is the text an element shows ("" when it is hidden or missing).
func (b *browser) text(sel string) string {
	return b.js(fmt.Sprintf(`(() => { const e = document.querySelector(%q); return e && e.offsetParent !== null ? e.innerText : "" })()`, sel))
}

// waitText waits until the element sel shows want.
func (b *browser) waitText(sel, want string) {
	b.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(b.text(sel), want) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.t.Fatalf("the page's %s shows %q, not %q (error: %q)", sel, b.text(sel), want, b.text("#error"))
}

// waitJS waits until expr is true in the page.
func (b *browser) waitJS(what, expr string) {
	b.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if b.js(expr) == "true" {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.t.Fatalf("the page never showed %s (%s); status %q, error %q", what, expr, b.text("#status"), b.text("#error"))
}

// click clicks a visible element as a user does (mouse events at its middle).
func (b *browser) click(sel string) {
	b.t.Helper()
	b.run(chromedp.Click(sel, chromedp.NodeVisible))
}

// typeInto focuses a field and types keys into it.
func (b *browser) typeInto(sel, keys string) {
	b.t.Helper()
	b.run(chromedp.Focus(sel), chromedp.KeyEvent(keys))
}

// keys types keys with the focus where it is.
func (b *browser) keys(keys string) {
	b.t.Helper()
	b.run(chromedp.KeyEvent(keys))
}

// screen writes screenshots of what the page shows now, at a desktop and a
// phone size, light and dark, and checks it with axe-core: no serious or
// critical violation.
func (b *browser) screen(name string) {
	b.t.Helper()
	for _, v := range []struct {
		w, h   int64
		scheme string
	}{{1280, 900, "light"}, {390, 844, "light"}, {1280, 900, "dark"}, {390, 844, "dark"}} {
		b.run(chromedp.EmulateViewport(v.w, v.h), scheme(v.scheme))
		b.waitJS("a settled layout", `document.readyState === "complete"`)
		if v.w == 1280 || v.scheme == "light" { // every size in light, the desktop in dark
			ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
			png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // the whole page: a phone scrolls
			cancel()
			if err != nil {
				b.t.Fatal(err)
			}
			file := filepath.Join(b.shots, fmt.Sprintf("%s-%dx%d-%s.png", name, v.w, v.h, v.scheme))
			if err := os.WriteFile(file, png, 0o644); err != nil {
				b.t.Fatal(err)
			}
		}
		if v.w == 390 && v.scheme == "dark" {
			continue // the narrow dark layout is the narrow light one in other colours
		}
		b.axe(fmt.Sprintf("%s at %dx%d, %s", name, v.w, v.h, v.scheme))
		if v.w == 390 {
			b.noOverflow(name)
		}
	}
	b.run(chromedp.EmulateViewport(1280, 900), scheme("light"))
}

// noOverflow checks that nothing is wider than a phone's screen.
func (b *browser) noOverflow(name string) {
	b.t.Helper()
	if w := b.js(`document.documentElement.scrollWidth`); w != "390" {
		b.t.Errorf("%s: the page is %s px wide on a 390 px screen (it scrolls sideways)", name, w)
	}
}

type axeViolation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  []struct {
		Target []any  `json:"target"`
		HTML   string `json:"html"`
	} `json:"nodes"`
}

// axe runs axe-core on the page: no serious or critical violation.
func (b *browser) axe(screen string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if has, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`typeof axe !== "undefined"`)); !has {
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](axeJS)); err != nil {
			b.t.Fatalf("axe-core: %v", err)
		}
	}
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](`axe.run(document, {resultTypes: ["violations"]}).then((r) => JSON.stringify(r.violations))`,
		chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("axe-core on %s: %v", screen, err)
	}
	var vs []axeViolation
	if err := json.Unmarshal([]byte(raw), &vs); err != nil {
		b.t.Fatal(err)
	}
	for _, v := range vs {
		msg := fmt.Sprintf("axe-core on %s: %s (%s): %s", screen, v.ID, v.Impact, v.Help)
		for _, n := range v.Nodes {
			msg += fmt.Sprintf("\n    %v %s", n.Target, n.HTML)
		}
		if v.Impact == "serious" || v.Impact == "critical" {
			b.t.Error(msg)
		} else {
			b.t.Log(msg)
		}
	}
}

// setValue sets a field's value (clearing it before typing).
func setValue(sel, v string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%q).value = %q`, sel, v))
}

// blur takes the focus off any field, so that keys reach the page.
func blur() chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](`document.activeElement && document.activeElement.blur()`)
}

// grantMic allows or blocks the microphone, as a person does in the
// browser's site settings.
func grantMic(origin string, allow bool) chromedp.Action[chromedp.Void] {
	setting := cdpbrowser.PermissionSettingDenied
	if allow {
		setting = cdpbrowser.PermissionSettingGranted
	}
	return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		p := cdpbrowser.SetPermissionParams{Permission: &cdpbrowser.PermissionDescriptor{Name: "microphone"}, Setting: setting, Origin: origin}
		if c := chromedp.FromContext(ctx); c != nil && c.BrowserContextID != "" {
			p.BrowserContextID = c.BrowserContextID
		}
		_, err := chromedp.CallBrowser(ctx, cdpbrowser.SetPermission, p)
		return err
	})
}
