package scheduler

import (
	"fmt"
	"strings"
)

// The enums travel as their names ("cloud", "draining", "inference"), so
// commands, snapshots and logs read as text and survive reordering of the
// constants.

// MarshalText implements encoding.TextMarshaler.
func (k PoolKind) MarshalText() ([]byte, error) {
	return enumText(k.String(), int(k), len(poolKindNames))
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (k *PoolKind) UnmarshalText(b []byte) error {
	v, err := ParsePoolKind(string(b))
	*k = v
	return err
}

// MarshalText implements encoding.TextMarshaler.
func (s NodeState) MarshalText() ([]byte, error) {
	return enumText(s.String(), int(s), len(nodeStateNames))
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *NodeState) UnmarshalText(b []byte) error {
	v, err := ParseNodeState(string(b))
	*s = v
	return err
}

// MarshalText implements encoding.TextMarshaler.
func (k JobKind) MarshalText() ([]byte, error) {
	return enumText(k.String(), int(k), len(jobKindNames))
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (k *JobKind) UnmarshalText(b []byte) error {
	v, err := ParseJobKind(string(b))
	*k = v
	return err
}

var priceModelNames = [...]string{"on-demand", "reserved", "spot"}

// String returns the price model's name.
func (m PriceModel) String() string {
	if int(m) < len(priceModelNames) {
		return priceModelNames[m]
	}
	return fmt.Sprintf("PriceModel(%d)", m)
}

// ParsePriceModel reads a price model by name.
func ParsePriceModel(s string) (PriceModel, error) {
	for i, n := range priceModelNames {
		if strings.EqualFold(s, n) {
			return PriceModel(i), nil
		}
	}
	return 0, fmt.Errorf("unknown pricing %q (want on-demand, reserved or spot)", s)
}

// MarshalText implements encoding.TextMarshaler.
func (m PriceModel) MarshalText() ([]byte, error) {
	return enumText(m.String(), int(m), len(priceModelNames))
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (m *PriceModel) UnmarshalText(b []byte) error {
	v, err := ParsePriceModel(string(b))
	*m = v
	return err
}

var opNames = [...]string{"in", "not-in", "exists"}

// String returns the operator's name.
func (o Op) String() string {
	if int(o) < len(opNames) {
		return opNames[o]
	}
	return fmt.Sprintf("Op(%d)", o)
}

// ParseOp reads a constraint operator by name.
func ParseOp(s string) (Op, error) {
	for i, n := range opNames {
		if strings.EqualFold(s, n) {
			return Op(i), nil
		}
	}
	return 0, fmt.Errorf("unknown constraint operator %q (want in, not-in or exists)", s)
}

// MarshalText implements encoding.TextMarshaler.
func (o Op) MarshalText() ([]byte, error) { return enumText(o.String(), int(o), len(opNames)) }

// UnmarshalText implements encoding.TextUnmarshaler.
func (o *Op) UnmarshalText(b []byte) error {
	v, err := ParseOp(string(b))
	*o = v
	return err
}

func enumText(name string, v, n int) ([]byte, error) {
	if v >= n {
		return nil, fmt.Errorf("%s is out of range", name)
	}
	return []byte(name), nil
}
