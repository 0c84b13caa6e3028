package client

import (
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/klauspost/compress/flate"
	"github.com/lxzan/gws"
	"github.com/wsroom/wsroom"
)

// run holds the Conn's connection and, each time it is lost, makes
// another, until the Conn ends. It is the Conn's one long-lived
// goroutine besides the connection's reader.
func (c *Conn[Send, Recv]) run(l *link) {
	defer close(c.stopped)
	for l != nil {
		cause := c.hold(l)
		if time.Since(l.up) >= c.cfg.backoffMax {
			c.level = 0 // it was up long enough: back to the shortest delays
		}
		c.mu.Lock()
		c.link = nil
		c.mu.Unlock()
		if c.ctx.Err() != nil {
			return
		}
		cause, final := classify(cause)
		if final {
			c.final = cause
			return
		}
		if wsroom.CloseStatus(cause) == 0 {
			cause = fmt.Errorf("client: connection lost: %w", cause)
		}
		l = c.reconnect(cause)
	}
}

// hold pings l's server until l ends, or closes l with 1000 when the Conn
// is closed. It returns why l ended.
func (c *Conn[Send, Recv]) hold(l *link) error {
	var tick <-chan time.Time
	if c.cfg.pingInterval > 0 {
		t := time.NewTicker(c.cfg.pingInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-l.done:
			return l.err
		case <-tick:
			c.writeDeadline(l.ws)
			_ = l.ws.WritePing(nil)
		case <-c.ctx.Done():
			_ = l.ws.SetWriteDeadline(time.Now().Add(time.Second))
			_ = l.ws.WriteClose(uint16(wsroom.StatusNormalClosure), nil)
			<-l.done // the reader returns: its socket is closed, and a push waiting for the range gives up
			return nil
		}
	}
}

// reconnect tries to connect again after a backoff, attempt after
// attempt, and returns the new connection, started. It returns nil when
// the Conn has ended: closed, or a final error (then in c.final).
func (c *Conn[Send, Recv]) reconnect(cause error) *link {
	for attempt := 1; ; attempt++ {
		if n := c.cfg.maxAttempts; n > 0 && attempt > n {
			c.final = &GaveUpError{Attempts: n, Err: cause}
			return nil
		}
		c.level++
		delay := c.delay(c.level, cause)
		if !c.push(item[Recv]{status: &Status{Kind: Reconnecting, Attempt: attempt, Delay: delay, Err: cause}}) || !c.sleep(delay) {
			return nil
		}
		l, err := c.connect()
		if err == nil {
			if !c.push(item[Recv]{status: &Status{Kind: Reconnected, Position: l.from}}) {
				_ = l.ws.NetConn().Close()
				return nil
			}
			c.start(l)
			return l
		}
		if c.ctx.Err() != nil {
			return nil
		}
		var final bool
		if cause, final = classify(err); final {
			c.final = cause
			return nil
		}
	}
}

// delay is the wait at backoff level n (from 1): full jitter over an
// exponential bound, at least what a 503 or 429 asked for (up to the
// largest delay).
func (c *Conn[Send, Recv]) delay(n int, cause error) time.Duration {
	d := backoff(n, c.cfg.backoffMin, c.cfg.backoffMax)
	var ue *UpgradeError
	if errors.As(cause, &ue) && ue.RetryAfter > d {
		d = min(ue.RetryAfter, max(c.cfg.backoffMax, d))
	}
	return d
}

// backoff draws the delay before attempt n uniformly from
// [0, min(hi, lo·2ⁿ⁻¹)].
func backoff(n int, lo, hi time.Duration) time.Duration {
	bound := lo
	for i := 1; i < n && bound < hi; i++ {
		bound *= 2
	}
	bound = min(bound, hi)
	if bound <= 0 {
		return 0
	}
	return rand.N(bound + 1)
}

// sleep waits d, and reports false if the Conn was closed meanwhile.
func (c *Conn[Send, Recv]) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.ctx.Done():
		return false
	}
}

// classify says whether err, why a connection ended or an attempt
// failed, ends the Conn, and returns it as the caller is to see it: a
// close as a *wsroom.CloseError.
func classify(err error) (error, bool) {
	var ce *gws.CloseError
	var local interface{ Uint16() uint16 }
	var ue *UpgradeError
	var cv *tls.CertificateVerificationError
	var corrupt flate.CorruptInputError
	switch {
	case errors.As(err, &ce):
		e := &wsroom.CloseError{Code: wsroom.StatusCode(ce.Code), Reason: string(ce.Reason)}
		return e, !retryableClose(e.Code)
	case errors.As(err, &local):
		// This side closed: the read limit, or the server broke the
		// protocol. A reconnect would read the same again.
		return &wsroom.CloseError{Code: wsroom.StatusCode(local.Uint16()), Reason: err.Error()}, true
	case errors.As(err, &corrupt):
		// A compressed message that does not inflate: the server would
		// send it again.
		return &wsroom.CloseError{Code: wsroom.StatusInvalidPayload, Reason: "invalid compressed data"}, true
	case errors.As(err, &ue):
		s := ue.Status
		return err, s != http.StatusRequestTimeout && s != http.StatusTooManyRequests && s < 500
	case errors.As(err, &cv):
		return err, true
	}
	return err, false // the network: a reset, an EOF, a timeout, a refused dial
}

// retryableClose reports whether a server's close with code is worth a
// reconnect: it went away, restarts, is overloaded, or failed this once.
func retryableClose(code wsroom.StatusCode) bool {
	switch code {
	case 1001, 1005, 1006, 1011, 1012, 1013, 1014:
		return true
	}
	return false
}
