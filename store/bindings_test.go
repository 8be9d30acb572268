package store

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func TestBindings(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	b := func(aor, contact string, exp time.Duration) Binding {
		return Binding{AOR: aor, Contact: contact, Source: "127.0.0.1:5062", Transport: "UDP", CallID: "c1", CSeq: 7,
			Expires: t0.Add(exp), UserAgent: "baresip"}
	}
	keys := func(bs []Binding) string {
		var out []string
		for _, b := range bs {
			out = append(out, b.AOR+" "+b.Contact)
		}
		return fmt.Sprint(out)
	}
	steps := []struct {
		name string
		do   func() error
		want string
	}{
		{"save", func() error { return s.SaveBinding(ctx, b("alice", "sip:a@1", time.Hour)) }, "[alice sip:a@1]"},
		{"second contact", func() error { return s.SaveBinding(ctx, b("alice", "sip:a@2", time.Hour)) }, "[alice sip:a@1 alice sip:a@2]"},
		{"refresh replaces", func() error { return s.SaveBinding(ctx, b("alice", "sip:a@1", 2*time.Hour)) }, "[alice sip:a@1 alice sip:a@2]"},
		{"other user", func() error { return s.SaveBinding(ctx, b("bob", "sip:b@1", time.Hour)) }, "[alice sip:a@1 alice sip:a@2 bob sip:b@1]"},
		{"expired not loaded", func() error { return s.SaveBinding(ctx, b("carol", "sip:c@1", -time.Second)) }, "[alice sip:a@1 alice sip:a@2 bob sip:b@1]"},
		{"delete one", func() error { return s.DeleteBinding(ctx, "alice", "sip:a@2") }, "[alice sip:a@1 bob sip:b@1]"},
		{"delete all of a user", func() error { return s.DeleteBinding(ctx, "alice", "") }, "[bob sip:b@1]"},
		{"delete what is not there", func() error { return s.DeleteBinding(ctx, "nobody", "x") }, "[bob sip:b@1]"},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		got, err := s.LoadBindings(ctx, t0)
		if err != nil {
			t.Fatal(err)
		}
		if keys(got) != st.want {
			t.Fatalf("after %s: %s, want %s", st.name, keys(got), st.want)
		}
	}
	got, _ := s.LoadBindings(ctx, t0)
	if want := b("bob", "sip:b@1", time.Hour); !got[0].Expires.Equal(want.Expires) || got[0].CSeq != 7 || got[0].UserAgent != "baresip" || got[0].Source != want.Source {
		t.Fatalf("read back %+v, want %+v", got[0], want)
	}
	if err := s.SaveBinding(ctx, Binding{AOR: "x"}); err == nil {
		t.Fatal("a binding without a contact was saved")
	}
}
