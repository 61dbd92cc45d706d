// Package usage holds the error for bad input (a flag, a value, a name) that every
// package returns and the CLI maps to exit code 2.
package usage

import "fmt"

// Error is bad input: Field names the flag, file or parameter at fault.
type Error struct {
	Field string
	Msg   string
}

func (e *Error) Error() string { return e.Field + ": " + e.Msg }

// Errorf makes an *Error.
func Errorf(field, format string, args ...any) error {
	return &Error{Field: field, Msg: fmt.Sprintf(format, args...)}
}
