package cli

import (
	"errors"
	"strings"
)

// settingWords are the CLI's words for the settings library errors name
// (their config keys): the flag, or the environment variable for the key.
var settingWords = map[string]string{
	"streams":         "--streams",
	"lookback_days":   "--lookback-days",
	"window_days":     "--window-days",
	"reconcile_every": "--reconcile-every",
	"concurrency":     "--concurrency",
	"start_date":      "--start-date",
	"max_rps":         "--max-rps",
	"endpoint_rps":    "--endpoint-rps",
	"api_key":         "STRIPE_API_KEY",
	"api_base":        "--api-base",
	"dest":            "--dest",
	"proxy":           "proxy",
}

// inCLIWords renders an error for the command line: an error about a
// setting (one with a Setting method, as the stripe, engine and dest
// packages return) reads with the flag or variable a user of the CLI sets,
// e.g. "streams: unknown stream" → "--streams: unknown stream" and
// "(api_key)" → "(STRIPE_API_KEY)". Other errors read as they are.
func inCLIWords(err error) string {
	msg := err.Error()
	var se interface{ Setting() string }
	if !errors.As(err, &se) {
		return msg
	}
	key := se.Setting()
	word, ok := settingWords[key]
	if !ok {
		return msg
	}
	if rest, ok := strings.CutPrefix(msg, key+": "); ok {
		return word + ": " + rest
	}
	msg = strings.Replace(msg, " "+key+": ", " "+word+": ", 1)
	return strings.Replace(msg, "("+key+")", "("+word+")", 1)
}
