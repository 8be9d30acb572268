package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// Without web.guest_key, guest links are signed with a key kept in
// data_dir: the same after a restart, readable by voxgate only.
func TestGuestKeyKeptInDataDir(t *testing.T) {
	dir := t.TempDir()
	var d *dataStore
	k1, err := d.guestKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := d.guestKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(k1) != 32 || !bytes.Equal(k1, k2) {
		t.Fatalf("keys %x and %x: want the same 32 bytes twice", k1, k2)
	}
	st, err := os.Stat(filepath.Join(dir, "guest.key"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("guest.key mode %v, want 0600", st.Mode().Perm())
	}
	other, err := d.guestKey(t.TempDir())
	if err != nil || bytes.Equal(other, k1) {
		t.Errorf("another data_dir got the same key (%v)", err)
	}
}
