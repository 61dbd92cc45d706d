//go:build !linux

package loadgen

import "net"

// rawIO is Linux only; elsewhere connections use their own Read and Write.
type rawIO struct{}

func newRawIO(any) *rawIO { return nil }

func (r *rawIO) read(p []byte) (int, error)  { panic("unreachable") }
func (r *rawIO) write(p []byte) (int, error) { panic("unreachable") }

func opError(_ string, _ net.Conn, err error) error { return err }
