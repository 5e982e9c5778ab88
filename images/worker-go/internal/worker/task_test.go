package worker

import "testing"

func TestDecide(t *testing.T) {
	cases := []struct {
		current  string
		draining bool
		incoming string
		want     admission
	}{
		{"", false, "q1", accept},
		{"q1", false, "q1", duplicate},
		{"q1", false, "q2", reject},
		{"q1", true, "q1", duplicate},
		{"q1", true, "q2", reject},
		{"", true, "q1", reject}, // shutting down: take nothing new
	}
	for _, tc := range cases {
		if got := decide(tc.current, tc.draining, tc.incoming); got != tc.want {
			t.Errorf("decide(%q, %t, %q) = %d, want %d", tc.current, tc.draining, tc.incoming, got, tc.want)
		}
	}
}
