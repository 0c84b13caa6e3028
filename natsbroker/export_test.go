package natsbroker

// LimitRecordedPending sets, on each of b's recorded subscriptions, how
// many messages nats.go holds for it while its deliver is busy: past
// that, it drops them, as it does for a slow consumer.
func LimitRecordedPending(b *Broker, n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.rsubs {
		_ = s.sub.SetPendingLimits(n, -1)
	}
}
