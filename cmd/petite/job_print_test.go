package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCommandLine(t *testing.T) {
	for _, c := range []struct {
		argv []string
		want string
	}{
		{[]string{"python", "train.py"}, "python train.py"},
		{[]string{"sh", "-c", "a=1\necho $a\n"}, "sh -c a=1 ... (1 more lines)"},
		{[]string{"sh", "-c", "x\ny\nz"}, "sh -c x ... (2 more lines)"},
		{nil, ""},
	} {
		assert.Equal(t, c.want, commandLine(c.argv), "%q", c.argv)
	}
}
