package twoway

// SetAfterSend installs a crash point: fn runs after Stripe answered a
// write and before the replica records it.
func (p *Pusher) SetAfterSend(fn func(stream, id string) error) { p.afterSend = fn }
