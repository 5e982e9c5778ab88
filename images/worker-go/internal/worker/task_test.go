package worker

import "testing"

func TestDecide(t *testing.T) {
	cases := []struct {
		name     string
		slot     slot
		incoming string
		want     admission
	}{
		{"idle", slot{}, "q1", start},
		{"working: same task again", slot{current: "q1"}, "q1", duplicate},
		{"working on the LLM call or simulated work", slot{current: "q1"}, "q2", reject},
		{"result in flight: next task taken", slot{current: "q1", sending: true}, "q2", queue},
		{"result in flight: current again", slot{current: "q1", sending: true}, "q1", duplicate},
		{"result in flight: waiting task again", slot{current: "q1", sending: true, next: "q2"}, "q2", duplicate},
		{"result in flight, one already waiting", slot{current: "q1", sending: true, next: "q2"}, "q3", reject},
		{"shutting down while sending", slot{current: "q1", sending: true, draining: true}, "q2", reject},
		{"shutting down: same task again", slot{current: "q1", draining: true}, "q1", duplicate},
		{"shutting down while working", slot{current: "q1", draining: true}, "q2", reject},
		{"shutting down while idle", slot{draining: true}, "q1", reject},
	}
	for _, tc := range cases {
		if got := decide(tc.slot, tc.incoming); got != tc.want {
			t.Errorf("%s: decide(%+v, %q) = %d, want %d", tc.name, tc.slot, tc.incoming, got, tc.want)
		}
	}
}
