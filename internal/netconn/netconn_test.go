package netconn

// The contract: at most MaxConnections are open; a new connection at the cap
// closes the one idle the longest, never one in the middle of a message or
// holding work, and is refused only when every connection is busy; a
// connection waiting past IdleTimeout times out; Reserve never lets the
// connections together hold more than MaxMemory, and Close gives back what a
// connection held.

import (
	"bufio"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/flumed/flumed/internal/await"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// pair returns an admitted server side and the client side of a pipe.
func pair(t *testing.T, m *Manager) (*Conn, net.Conn, error) {
	t.Helper()
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	c, err := m.Admit(a)
	return c, b, err
}

func TestAtTheCapTheLongestIdleConnectionMakesRoom(t *testing.T) {
	m := New(Options{MaxConnections: 3})
	first, _, _ := pair(t, m)
	second, _, _ := pair(t, m)
	third, _, _ := pair(t, m)
	second.Waiting() // idle the longest
	first.Waiting()
	third.Waiting()

	if _, _, err := pair(t, m); err != nil {
		t.Fatalf("a fourth connection was refused: %v", err)
	}
	if !second.Evicted() || first.Evicted() || third.Evicted() {
		t.Fatalf("evicted: first %v second %v third %v; want only the second (idle the longest)",
			first.Evicted(), second.Evicted(), third.Evicted())
	}
	if _, err := second.Read(make([]byte, 1)); err == nil {
		t.Fatal("the evicted connection still reads")
	}
	if s := m.Stats(); s.Open != 3 || s.Evicted != 1 || s.Accepted != 4 {
		t.Fatalf("stats %+v, want 3 open, 1 evicted, 4 accepted", s)
	}
}

func TestABusyConnectionIsNeverEvicted(t *testing.T) {
	m := New(Options{MaxConnections: 2})
	reading, _, _ := pair(t, m) // never Waiting: in the middle of a message
	holding, _, _ := pair(t, m) // its reader waits, but a call is in flight
	holding.Hold()
	holding.Waiting()

	if _, _, err := pair(t, m); !errors.Is(err, ErrFull) {
		t.Fatalf("err %v, want ErrFull with every connection busy", err)
	}
	if reading.Evicted() || holding.Evicted() {
		t.Fatal("a busy connection was evicted")
	}
	holding.Release() // the call is done: now it is idle
	if _, _, err := pair(t, m); err != nil || !holding.Evicted() {
		t.Fatalf("err %v, evicted %v; want the now idle connection to make room", err, holding.Evicted())
	}
	if s := m.Stats(); s.Refused != 1 {
		t.Fatalf("refused %d, want 1", s.Refused)
	}
}

func TestStartedTakesAConnectionOutOfTheIdleOnes(t *testing.T) {
	m := New(Options{MaxConnections: 2})
	a, _, _ := pair(t, m)
	b, _, _ := pair(t, m)
	a.Waiting()
	b.Waiting()
	a.Started() // a message arrives on a: b is now the only idle one
	if _, _, err := pair(t, m); err != nil || a.Evicted() || !b.Evicted() {
		t.Fatalf("err %v, a evicted %v, b evicted %v; want b to make room", err, a.Evicted(), b.Evicted())
	}
}

func TestSayingStartedOrWaitingTwiceIsSayingItOnce(t *testing.T) {
	m := New(Options{MaxConnections: 1})
	a, _, _ := pair(t, m)
	a.Started() // already busy since Admit
	a.Waiting()
	a.Waiting()
	if s := m.Stats(); s.Idle != 1 {
		t.Fatalf("idle %d after Started, Waiting, Waiting; want 1", s.Idle)
	}
	a.Started()
	a.Started()
	a.Waiting()
	if s := m.Stats(); s.Idle != 1 {
		t.Fatalf("idle %d after Started, Started, Waiting; want 1", s.Idle)
	}
}

func TestAClosedConnectionFreesItsPlaceAndMemory(t *testing.T) {
	m := New(Options{MaxConnections: 1, MaxMemory: 100})
	a, _, _ := pair(t, m)
	if !a.Reserve(60) || a.Reserve(50) {
		t.Fatal("Reserve: want 60 to fit and 50 more not to")
	}
	a.Close()
	a.Close() // twice is fine
	b, _, err := pair(t, m)
	if err != nil {
		t.Fatalf("the place was not freed: %v", err)
	}
	if !b.Reserve(100) {
		t.Fatalf("memory not given back: %+v", m.Stats())
	}
	b.Free(100)
	if s := m.Stats(); s.Memory != 0 || s.Open != 1 {
		t.Fatalf("stats %+v, want 0 memory, 1 open", s)
	}
}

func TestAWaitingConnectionTimesOutWhenIdle(t *testing.T) {
	m := New(Options{IdleTimeout: 50 * time.Millisecond})
	c, _, _ := pair(t, m)
	c.Waiting()
	var ne net.Error
	if _, err := c.Read(make([]byte, 1)); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read err %v, want a timeout", err)
	}
}

func TestCloseRefusesNewConnections(t *testing.T) {
	m := New(Options{})
	c, _, _ := pair(t, m)
	m.Close()
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("an open connection survived Close")
	}
	if _, _, err := pair(t, m); !errors.Is(err, ErrClosed) {
		t.Fatalf("err %v, want ErrClosed", err)
	}
}

// TestIdleCrowdDoesNotLockOutAClient is the measured failure: 2,000 idle
// connections against a cap of 1,024 must not keep a well-behaved client
// from being served, over real TCP.
func TestIdleCrowdDoesNotLockOutAClient(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := New(Options{MaxConnections: 1024})
	done := make(chan struct{})
	go func() { // a line echo server
		defer close(done)
		for {
			raw, err := l.Accept()
			if err != nil {
				return
			}
			c, err := m.Admit(raw)
			if err != nil {
				raw.Close()
				continue
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					c.Waiting()
					line, err := r.ReadBytes('\n')
					if err != nil {
						return
					}
					c.Started()
					if _, err := c.Write(line); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		m.Close()
		<-done
		await.True(t, "connections closed", func() bool { return m.Stats().Open == 0 })
	})

	var idle []net.Conn
	t.Cleanup(func() {
		for _, c := range idle {
			c.Close()
		}
	})
	for range 2000 {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	// A crowd connection may be refused while the first ones have not yet
	// reached Waiting (busy); what counts is that they are all handled and
	// the open ones idle when the client comes.
	await.True(t, "the crowd is handled and idle", func() bool {
		s := m.Stats()
		return s.Accepted+s.Refused == 2000 && s.Idle == s.Open
	})

	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || got != "hello\n" {
		t.Fatalf("the client got %q, %v; want its line echoed", got, err)
	}
	if s := m.Stats(); s.Open > 1024 || s.Evicted < s.Accepted-1024 {
		t.Fatalf("stats %+v: want at most 1024 open, the rest evicted", s)
	}
}
