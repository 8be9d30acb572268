package webclient

import (
	"slices"
	"testing"
)

func TestCandidatesWaitForTheirAnswer(t *testing.T) {
	var got []string
	q := NewCandidateGate(func(m Message) { got = append(got, m.Type+":"+m.SDP) })
	cand := func(n string) Message { return Message{Type: "candidate", SDP: n} }
	q.Candidate(cand("1")) // gathered during SetLocalDescription
	q.Candidate(cand("2"))
	q.Release(Message{Type: "answer", SDP: "a"})
	q.Candidate(cand("3"))
	q.Hold() // an ICE restart
	q.Candidate(cand("4"))
	q.Release(Message{Type: "answer", SDP: "b"})
	want := []string{"answer:a", "candidate:1", "candidate:2", "candidate:3", "answer:b", "candidate:4"}
	if !slices.Equal(got, want) {
		t.Fatalf("sent %v, want %v", got, want)
	}
}
