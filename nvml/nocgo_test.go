//go:build !cgo

package nvml

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Without cgo, every source says so in one line.
func TestNoSupport(t *testing.T) {
	assert.False(t, Supported)
	_, err := Open()
	require.ErrorIs(t, err, ErrNoSupport)
	_, err = OpenMock("dgxh100", MockConfig{})
	require.ErrorIs(t, err, ErrNoSupport)
	assert.Equal(t, "nvml: petite was built without NVML support (CGO_ENABLED=0); rebuild with cgo and gcc", err.Error())
}
