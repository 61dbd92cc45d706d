package results

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"

	"github.com/go-sql-driver/mysql"
)

// Class is the class of an error, as counted by the recorder.
type Class string

// AddCounts adds the non-zero counts of from into *to, making the map when
// there is something to add, and returns the sum added.
func AddCounts(to *map[Class]int64, from map[Class]int64) int64 {
	var sum int64
	for c, n := range from {
		if n == 0 {
			continue
		}
		if *to == nil {
			*to = map[Class]int64{}
		}
		(*to)[c] += n
		sum += n
	}
	return sum
}

// The error classes. Classify maps every error to exactly one of them.
const (
	ClassTimeout    Class = "timeout"    // context.DeadlineExceeded, net.Error with Timeout(), os.ErrDeadlineExceeded, "i/o timeout"
	ClassConnection Class = "connection" // refused, reset, broken pipe, EOF, mysql.ErrInvalidConn, driver.ErrBadConn, MySQL 1053, 1927, 2006, 2013
	ClassNotReady   Class = "not-ready"  // MySQL 1047 (Galera non-Primary / wsrep not ready)
	ClassConflict   Class = "conflict"   // 1213 (deadlock, Galera certification conflict)
	ClassLockWait   Class = "lock-wait"  // 1205
	ClassReadOnly   Class = "read-only"  // 1290 (and 1836 read-only transaction)
	ClassResource   Class = "resource"   // 1037, 1038, 1041, 1114, 1712, 1720, 8175, 8176 (out of memory / resources)
	ClassOther      Class = "other"      // anything else: keep number (0 if not a server error) and message
	ClassCanceled   Class = "canceled"   // context.Canceled: our own shutdown; counted apart, never as a failure of the database
)

// Classes lists every class, in a fixed order.
var Classes = []Class{
	ClassTimeout,
	ClassConnection,
	ClassNotReady,
	ClassConflict,
	ClassLockWait,
	ClassReadOnly,
	ClassResource,
	ClassOther,
	ClassCanceled,
}

// numClasses is len(Classes); classIndex maps a Class to its position.
const numClasses = 9

func classIndex(c Class) int {
	switch c {
	case ClassTimeout:
		return 0
	case ClassConnection:
		return 1
	case ClassNotReady:
		return 2
	case ClassConflict:
		return 3
	case ClassLockWait:
		return 4
	case ClassReadOnly:
		return 5
	case ClassResource:
		return 6
	case ClassCanceled:
		return 8
	default:
		return 7 // ClassOther and anything unknown
	}
}

// idxCanceled is classIndex(ClassCanceled).
const idxCanceled = 8

// ErrorInfo is what Classify finds out about an error. Number is the MySQL
// server error number (0 when the error did not come from the server).
// Message is the server's message for a server error, err.Error() otherwise.
type ErrorInfo struct {
	Class   Class
	Number  uint16
	Message string
}

// serverClasses maps the MySQL/MariaDB error numbers with a class of their
// own. Every other server error is ClassOther.
var serverClasses = map[uint16]Class{
	1047: ClassNotReady, // Galera: WSREP has not yet prepared node for application use
	1213: ClassConflict, // deadlock, also Galera certification conflicts
	1205: ClassLockWait, // lock wait timeout
	1290: ClassReadOnly, // --read-only prevents the statement
	1836: ClassReadOnly, // read-only mode / transaction
	1037: ClassResource, // out of memory
	1038: ClassResource, // out of sort memory
	1041: ClassResource, // out of resources
	1114: ClassResource, // table is full
	1712: ClassResource,
	1720: ClassResource,
	8175: ClassResource,   // memory quota exceeded (statement)
	8176: ClassResource,   // memory quota exceeded (server)
	1053: ClassConnection, // server shutdown in progress
	1927: ClassConnection, // connection killed (MariaDB)
	2006: ClassConnection, // server has gone away
	2013: ClassConnection, // lost connection during query
}

// Classify maps an error from a database operation to its class. It looks
// through wrapped errors (errors.As / errors.Is). A *mysql.MySQLError is
// classified by its number first; then, in this order, context.Canceled
// (canceled), timeouts, lost or refused connections, and anything else
// (other). Classify(nil) returns the zero ErrorInfo (an empty Class).
//
// go-sql-driver/mysql turns a timeout of the DSN's readTimeout/writeTimeout
// into mysql.ErrInvalidConn (it only logs the i/o timeout), so those count as
// connection errors; a context deadline comes back as a timeout.
func Classify(err error) ErrorInfo {
	if err == nil {
		return ErrorInfo{}
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) && me != nil {
		c, ok := serverClasses[me.Number]
		if !ok {
			c = ClassOther
		}
		return ErrorInfo{Class: c, Number: me.Number, Message: me.Message}
	}
	return ErrorInfo{Class: classifyNonServer(err), Message: err.Error()}
}

func classifyNonServer(err error) Class {
	if errors.Is(err, context.Canceled) {
		return ClassCanceled
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return ClassTimeout
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ClassTimeout
	}
	if errors.Is(err, mysql.ErrInvalidConn) ||
		errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNABORTED) ||
		errors.Is(err, syscall.EPIPE) {
		return ClassConnection
	}
	// Errors that lost their chain (formatted with %v, or from a library that
	// flattens them) are recognised by their text.
	msg := err.Error()
	switch {
	case strings.Contains(msg, "i/o timeout"):
		return ClassTimeout
	case strings.Contains(msg, "connection refused"),
		strings.Contains(msg, "connection reset"),
		strings.Contains(msg, "broken pipe"),
		strings.Contains(msg, "invalid connection"),
		strings.Contains(msg, "bad connection"):
		return ClassConnection
	}
	return ClassOther
}
