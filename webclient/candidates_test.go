package webclient

import (
	"slices"
	"testing"
)

func TestCandidatesWaitForTheirAnswer(t *testing.T) {
	var got []string
	q := &candidateGate{send: func(m Message) { got = append(got, m.Type+":"+m.SDP) }}
	cand := func(n string) Message { return Message{Type: "candidate", SDP: n} }
	q.candidate(cand("1")) // gathered during SetLocalDescription
	q.candidate(cand("2"))
	q.release(Message{Type: "answer", SDP: "a"})
	q.candidate(cand("3"))
	q.hold() // an ICE restart
	q.candidate(cand("4"))
	q.release(Message{Type: "answer", SDP: "b"})
	want := []string{"answer:a", "candidate:1", "candidate:2", "candidate:3", "answer:b", "candidate:4"}
	if !slices.Equal(got, want) {
		t.Fatalf("sent %v, want %v", got, want)
	}
}
