package api

import (
	"bytes"
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// scripted hands out the suffixes of a list in turn, then the last one for
// ever.
type scripted struct{ suffixes [][]byte }

func (s *scripted) Read(p []byte) (int, error) {
	next := s.suffixes[0]
	if len(s.suffixes) > 1 {
		s.suffixes = s.suffixes[1:]
	}
	return copy(p, next), nil
}

// A name the server draws for a job that is already taken is drawn again
// (a busy cluster repeats six hex digits often: the chaos run met it), up
// to maxIDDraws; a name the spec chose is never changed.
func TestSubmitDrawsTakenNameAgain(t *testing.T) {
	c := newCluster(t, 1, 1)
	cl := c.client(0)
	ctx := context.Background()
	old := idRandom
	t.Cleanup(func() { idRandom = old })
	body := []byte(`{"name":"nb","task":{"gpus":1,"command":["true"]}}`)

	idRandom = &scripted{suffixes: [][]byte{{1, 1, 1}, {1, 1, 1}, {2, 2, 2}}}
	first, err := cl.Submit(ctx, body)
	require.NoError(t, err)
	assert.Equal(t, "nb-010101", first.ID)
	second, err := cl.Submit(ctx, body)
	require.NoError(t, err, "a drawn name that is taken is drawn again")
	assert.Equal(t, "nb-020202", second.ID)

	// Every draw taken: the submit gives up with a conflict after
	// maxIDDraws, and nothing is added.
	idRandom = &scripted{suffixes: [][]byte{{1, 1, 1}}}
	_, err = cl.Submit(ctx, body)
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, http.StatusConflict, e.Status)
	jobs, err := cl.Jobs(ctx, false)
	require.NoError(t, err)
	assert.Len(t, jobs, 2)

	// A spec's own id that is taken stays a conflict.
	_, err = cl.Submit(ctx, bytes.Replace(body, []byte(`"name":"nb"`), []byte(`"id":"nb-010101"`), 1))
	require.ErrorAs(t, err, &e)
	assert.Equal(t, http.StatusConflict, e.Status)
}
