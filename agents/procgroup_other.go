//go:build !unix

package agents

import (
	"errors"
	"os"
	"syscall"
)

func ownProcessGroup() *syscall.SysProcAttr { return nil }

func killGroup(p *os.Process) error {
	if err := p.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	return nil
}
