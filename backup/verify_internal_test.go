package backup

import (
	"encoding/hex"
	"testing"
)

func TestParseFileID(t *testing.T) {
	good := "3d0d7e5fb2ce288813306e4d4636395e047a3d28"
	id, ok := parseFileID([]byte(good))
	if !ok || hex.EncodeToString(id[:]) != good {
		t.Fatalf("parseFileID(%s) = %x, %v", good, id, ok)
	}
	for _, bad := range []string{
		"", "3d0d", good + "0", good[:39], "3D0D7E5FB2CE288813306E4D4636395E047A3D28",
		"3d0d7e5fb2ce288813306e4d4636395e047a3d2g", "../../../../../../../../../../etc/passwd",
		"3d0d7e5fb2ce288813306e4d4636395e047a3d2\x00", "/3d0d7e5fb2ce288813306e4d4636395e047a3d2",
	} {
		if _, ok := parseFileID([]byte(bad)); ok {
			t.Errorf("parseFileID(%q) accepted", bad)
		}
	}
}
