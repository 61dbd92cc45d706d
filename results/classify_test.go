package results

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// closedPort returns a loopback address nothing listens on: a port we listened
// on and closed.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// silentServer returns the address of a server that accepts connections and
// never answers.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

func refusedDialErr(t *testing.T) error {
	t.Helper()
	c, err := net.Dial("tcp", closedPort(t))
	if err == nil {
		c.Close()
		t.Fatal("dial to a closed port succeeded")
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial to a closed port: want ECONNREFUSED, got %v", err)
	}
	return err
}

// deadlineErr reads from a real connection whose deadline has passed.
func deadlineErr(t *testing.T) error {
	t.Helper()
	c, err := net.Dial("tcp", silentServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetReadDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	_, err = c.Read(make([]byte, 1))
	if err == nil {
		t.Fatal("read past the deadline succeeded")
	}
	return err
}

// resetErr reads from a connection the peer aborted (SO_LINGER 0: RST).
func resetErr(t *testing.T) error {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		// The RST can beat the dial's own check of the socket: that is a
		// real reset too.
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatal(err)
		}
		return err
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(make([]byte, 1))
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read from an aborted connection: want ECONNRESET, got %v", err)
	}
	return err
}

func dialCtxErr(t *testing.T, ctx context.Context) error {
	t.Helper()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", closedPort(t))
	if err == nil {
		c.Close()
		t.Fatal("dial succeeded")
	}
	return err
}

func TestClassify(t *testing.T) {
	canceledCtx, cancel := context.WithCancel(context.Background())
	cancel()
	expiredCtx, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()

	srv := func(n uint16) error {
		return &mysql.MySQLError{Number: n, SQLState: [5]byte{'H', 'Y', '0', '0', '0'}, Message: fmt.Sprintf("message %d", n)}
	}
	type tc struct {
		name   string
		err    error
		class  Class
		number uint16
		msg    string // checked when not empty
	}
	cases := []tc{
		{"nil", nil, "", 0, ""},
		{"1047 not ready", srv(1047), ClassNotReady, 1047, "message 1047"},
		{"1213 conflict", srv(1213), ClassConflict, 1213, ""},
		{"1205 lock wait", srv(1205), ClassLockWait, 1205, ""},
		{"1290 read-only", srv(1290), ClassReadOnly, 1290, ""},
		{"1836 read-only", srv(1836), ClassReadOnly, 1836, ""},
		{"1053 shutdown", srv(1053), ClassConnection, 1053, ""},
		{"1927 killed", srv(1927), ClassConnection, 1927, ""},
		{"2006 gone away", srv(2006), ClassConnection, 2006, ""},
		{"2013 lost", srv(2013), ClassConnection, 2013, ""},
		{"unknown server error", &mysql.MySQLError{Number: 1146, Message: "Table 'db.t' doesn't exist"}, ClassOther, 1146, "Table 'db.t' doesn't exist"},
		{"wrapped server error", fmt.Errorf("exec insert: %w", srv(1213)), ClassConflict, 1213, ""},
		{"doubly wrapped server error", fmt.Errorf("tx: %w", fmt.Errorf("commit: %w", srv(1047))), ClassNotReady, 1047, ""},
		{"joined server error", errors.Join(errors.New("rollback failed"), srv(1205)), ClassLockWait, 1205, ""},
		{"server error wins over the context", fmt.Errorf("%w: %w", context.DeadlineExceeded, srv(1213)), ClassConflict, 1213, ""},

		{"context.Canceled", context.Canceled, ClassCanceled, 0, "context canceled"},
		{"wrapped context.Canceled", fmt.Errorf("query: %w", context.Canceled), ClassCanceled, 0, ""},
		{"real canceled dial", dialCtxErr(t, canceledCtx), ClassCanceled, 0, ""},
		{"context.DeadlineExceeded", context.DeadlineExceeded, ClassTimeout, 0, ""},
		{"wrapped DeadlineExceeded", fmt.Errorf("query: %w", context.DeadlineExceeded), ClassTimeout, 0, ""},
		{"real expired dial", dialCtxErr(t, expiredCtx), ClassTimeout, 0, ""},
		{"os.ErrDeadlineExceeded", os.ErrDeadlineExceeded, ClassTimeout, 0, ""},
		{"real read past deadline", deadlineErr(t), ClassTimeout, 0, ""},
		{"wrapped real read past deadline", fmt.Errorf("read: %w", deadlineErr(t)), ClassTimeout, 0, ""},
		{"net.Error with Timeout()", fmt.Errorf("resolve: %w", &net.DNSError{Err: "lookup timed out", Name: "db1", IsTimeout: true}), ClassTimeout, 0, ""},
		{"net.Error without Timeout()", &net.DNSError{Err: "no such host", Name: "db1", IsNotFound: true}, ClassOther, 0, ""},
		{"flattened i/o timeout", errors.New("read tcp 10.0.0.1:3306: i/o timeout"), ClassTimeout, 0, ""},

		{"real refused dial", refusedDialErr(t), ClassConnection, 0, ""},
		{"wrapped real refused dial", fmt.Errorf("connect node 2: %w", refusedDialErr(t)), ClassConnection, 0, ""},
		{"flattened refused", fmt.Errorf("connect: %v", refusedDialErr(t)), ClassConnection, 0, ""},
		{"real reset", resetErr(t), ClassConnection, 0, ""},
		{"broken pipe", &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.EPIPE)}, ClassConnection, 0, ""},
		{"io.EOF", io.EOF, ClassConnection, 0, "EOF"},
		{"wrapped io.EOF", fmt.Errorf("read packet: %w", io.EOF), ClassConnection, 0, ""},
		{"io.ErrUnexpectedEOF", io.ErrUnexpectedEOF, ClassConnection, 0, ""},
		{"mysql.ErrInvalidConn", mysql.ErrInvalidConn, ClassConnection, 0, "invalid connection"},
		{"wrapped mysql.ErrInvalidConn", fmt.Errorf("exec: %w", mysql.ErrInvalidConn), ClassConnection, 0, ""},
		{"driver.ErrBadConn", driver.ErrBadConn, ClassConnection, 0, ""},
		{"net.ErrClosed", net.ErrClosed, ClassConnection, 0, ""},

		{"unknown error", errors.New("boom"), ClassOther, 0, "boom"},
	}
	for _, c := range resourceNumbers {
		cases = append(cases, tc{fmt.Sprintf("%d resource", c), srv(c), ClassResource, c, ""})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Classify(c.err)
			if got.Class != c.class || got.Number != c.number {
				t.Fatalf("Classify(%v) = %+v, want class %q number %d", c.err, got, c.class, c.number)
			}
			if c.msg != "" && got.Message != c.msg {
				t.Fatalf("Classify(%v).Message = %q, want %q", c.err, got.Message, c.msg)
			}
			if c.err != nil && got.Message == "" {
				t.Fatalf("Classify(%v) lost the message", c.err)
			}
		})
	}
}

var resourceNumbers = []uint16{1037, 1038, 1041, 1114, 1712, 1720, 8175, 8176}

// TestClassifyDriver classifies what the real driver returns against real
// sockets: a refused port, and a server that never answers, cut by a context
// deadline or by the DSN's read timeout.
func TestClassifyDriver(t *testing.T) {
	mysql.SetLogger(log.New(io.Discard, "", 0))
	open := func(dsn string) *sql.DB {
		db, err := sql.Open("mysql", dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	t.Run("refused", func(t *testing.T) {
		err := open("u:p@tcp(" + closedPort(t) + ")/db?timeout=2s").Ping()
		if got := Classify(err).Class; got != ClassConnection {
			t.Fatalf("Classify(%v) = %q, want connection", err, got)
		}
	})
	t.Run("context deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		err := open("u:p@tcp(" + silentServer(t) + ")/db").PingContext(ctx)
		if got := Classify(err).Class; got != ClassTimeout {
			t.Fatalf("Classify(%v) = %q, want timeout", err, got)
		}
	})
	t.Run("canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		err := open("u:p@tcp(" + silentServer(t) + ")/db").PingContext(ctx)
		if got := Classify(err).Class; got != ClassCanceled {
			t.Fatalf("Classify(%v) = %q, want canceled", err, got)
		}
	})
	t.Run("DSN read timeout", func(t *testing.T) {
		// The driver logs the i/o timeout and returns mysql.ErrInvalidConn:
		// the timeout is lost, the operation counts as a connection error.
		err := open("u:p@tcp(" + silentServer(t) + ")/db?timeout=2s&readTimeout=100ms").Ping()
		if got := Classify(err).Class; got != ClassConnection {
			t.Fatalf("Classify(%v) = %q, want connection", err, got)
		}
	})
}

func TestClassesOrder(t *testing.T) {
	want := []Class{"timeout", "connection", "not-ready", "conflict", "lock-wait", "read-only", "resource", "other", "canceled"}
	if fmt.Sprint(Classes) != fmt.Sprint(want) || len(Classes) != numClasses {
		t.Fatalf("Classes = %v, want %v", Classes, want)
	}
	for i, c := range Classes {
		if classIndex(c) != i {
			t.Fatalf("classIndex(%q) = %d, want %d", c, classIndex(c), i)
		}
	}
}
