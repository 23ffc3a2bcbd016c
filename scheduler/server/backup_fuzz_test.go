package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// FuzzDecodeBackup: any file is either refused with one line (a
// *BackupError, no newline in it) or accepted with a body whose length and
// SHA-256 are the header's; what EncodeBackup writes of an accepted file's
// header and body decodes to them again.
func FuzzDecodeBackup(f *testing.F) {
	var b bytes.Buffer
	if err := EncodeBackup(&b, BackupHeader{Petite: "0.1.0", Created: 1764496800, Index: 7}, []byte(`{"v":1}`)); err != nil {
		f.Fatal(err)
	}
	f.Add(b.Bytes())
	f.Add([]byte("petite-snapshot v1 bytes=2\n{}"))
	f.Add([]byte("petite-snapshot v2 layout=new\n{}"))
	f.Add([]byte("petite-snapshot v1 bytes=-1 sha256=00\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, file []byte) {
		h, body, err := DecodeBackup(file)
		if err != nil {
			var be *BackupError
			if !errors.As(err, &be) {
				t.Fatalf("error %v is not a *BackupError", err)
			}
			if strings.Contains(be.Problem, "\n") {
				t.Fatalf("problem of more than one line: %q", be.Problem)
			}
			return
		}
		sum := sha256.Sum256(body)
		if int64(len(body)) != h.Size || hex.EncodeToString(sum[:]) != h.SHA256 {
			t.Fatalf("accepted a body of %d bytes, sha256 %x, against header %+v", len(body), sum, h)
		}
		if h.Format != BackupFormat {
			t.Fatalf("accepted format v%d", h.Format)
		}
		var again bytes.Buffer
		if err := EncodeBackup(&again, h, body); err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		h2, body2, err := DecodeBackup(again.Bytes())
		if err != nil || !bytes.Equal(body, body2) || h2.Size != h.Size || h2.SHA256 != h.SHA256 || h2.Index != h.Index {
			t.Fatalf("round trip: %+v %v, want %+v", h2, err, h)
		}
	})
}
