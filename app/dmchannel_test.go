package app_test

import "testing"

// Ensure the kept DM channel is what the adapter answers a person in, is
// replaced only when the one Slack said is gone is still the one kept,
// and that nobody gets a record from it.
func TestKnownAndReplacedDM(t *testing.T) {
	tc := newTestCore(t)
	tc.subscribe(t, owner)
	kept := tc.KnownDM(owner)
	if kept != "D"+owner {
		t.Fatalf("KnownDM after subscribing = %q, want the DM opened then", kept)
	}
	for _, c := range []struct {
		name, user, stale, fresh, want string
	}{
		{"a stale guess leaves it", owner, "DOLDER001", "DNEW00001", kept},
		{"the kept one is replaced", owner, kept, "DNEW00001", "DNEW00001"},
		{"and can be forgotten", owner, "DNEW00001", "", ""},
		{"nothing kept, nothing replaced", owner, "", "DNEW00002", ""},
		{"someone never subscribed", outsider, "DX", "DY", ""},
	} {
		tc.ReplaceDM(c.user, c.stale, c.fresh)
		if got := tc.KnownDM(c.user); got != c.want {
			t.Errorf("%s: KnownDM = %q, want %q", c.name, got, c.want)
		}
	}
	if _, err := tc.db.Subscriber(outsider); err == nil {
		t.Error("ReplaceDM created a record for someone never subscribed")
	}
}
