package server

import (
	"bytes"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDecodeBackup(t *testing.T) {
	var b bytes.Buffer
	body := []byte(`{"v":1,"type":"server_snapshot"}`)
	require.NoError(t, EncodeBackup(&b, BackupHeader{Petite: "1.2.3", Created: 1764496800, Index: 42}, body))
	file := b.Bytes()
	h, got, err := DecodeBackup(file)
	require.NoError(t, err)
	assert.Equal(t, body, got)
	assert.Equal(t, BackupHeader{Format: 1, Petite: "1.2.3", Created: 1764496800, Index: 42, Size: int64(len(body)), SHA256: h.SHA256}, h)
	assert.Len(t, h.SHA256, 64)

	nl := bytes.IndexByte(file, '\n')
	flip := bytes.Clone(file)
	flip[nl+3] ^= 1
	for _, tc := range []struct {
		name  string
		file  []byte
		want  string
		newer bool
	}{
		{"flipped body byte", flip, "checksum mismatch: the body's SHA-256 is ", false},
		{"cut", file[:len(file)-1], "truncated: the body has 31 of the 32 bytes", false},
		{"trailing", append(bytes.Clone(file), 'x'), "1 bytes of trailing data past the 32 bytes", false},
		{"newer", append([]byte("petite-snapshot v2"), file[len("petite-snapshot v1"):]...), "format v2 is newer than this petite (dev) reads (v1); restore it with petite 1.2.3 or later", true},
		{"newer, other header", []byte("petite-snapshot v3 layout=new\n{}"), "format v3 is newer", true},
		{"empty", nil, "not a petite snapshot file", false},
		{"no newline", []byte("petite-snapshot v1 bytes=2"), "not a petite snapshot file", false},
		{"no checksum", []byte("petite-snapshot v1 bytes=2\n{}"), "header: no sha256= field", false},
		{"bad version", []byte("petite-snapshot vX bytes=2\n{}"), `header: format version "vX"`, false},
		{"bad length", []byte("petite-snapshot v1 bytes=-2 sha256=00\n{}"), "header: bytes=-2 is not a length", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := DecodeBackup(tc.file)
			var be *BackupError
			require.True(t, errors.As(err, &be), "%v", err)
			assert.Contains(t, be.Problem, tc.want)
			assert.Equal(t, tc.newer, be.Newer)
		})
	}
}
