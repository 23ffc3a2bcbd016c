//go:build !cgo

package nvml

// Supported reports whether this build can read NVML (it was built with cgo).
const Supported = false

// Open reports ErrNoSupport: a build without cgo cannot call NVIDIA's library.
func Open() (Source, error) { return nil, ErrNoSupport }

// Mock stands for the mock source of a cgo build; without cgo none opens.
type Mock struct{ Source }

// OpenMock reports ErrNoSupport: go-nvml's mock servers build only with cgo.
func OpenMock(string, MockConfig) (*Mock, error) { return nil, ErrNoSupport }

// InjectXID reports ErrNoSupport.
func (*Mock) InjectXID(int, uint64) error { return ErrNoSupport }
