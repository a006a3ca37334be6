package cli

// SetTestClientOption makes every Stripe client the commands of env build
// apply o last (e.g. a millisecond backoff).
func SetTestClientOption(env *Env, o ClientOption) { env.clientOption = o }
