package cli

import (
	"errors"
	"strings"
)

// settingFlags are the flags that set the settings library errors name
// (their config keys, as in stripeline.yaml).
var settingFlags = map[string]string{
	"streams":           "--streams",
	"lookback_days":     "--lookback-days",
	"window_days":       "--window-days",
	"reconcile_every":   "--reconcile-every",
	"concurrency":       "--concurrency",
	"start_date":        "--start-date",
	"max_rps":           "--max-rps",
	"endpoint_rps":      "--endpoint-rps",
	"api_base":          "--api-base",
	"dest":              "--dest",
	"account":           "--account",
	"two_way":           "--two-way",
	"two_way.conflicts": "--conflicts",
}

// settingVars are the environment variables that set settings.
var settingVars = map[string]string{
	"api_key":  "STRIPE_API_KEY",
	"api_base": "STRIPE_API_BASE",
}

// settingWord names a setting the way the user of this invocation set it:
// the flag if it was given, else the environment variable if it is set,
// else the config file's key ("streams in stripeline.yaml") if the file
// sets it, else the flag or variable that would set it.
func (a *App) settingWord(key string) (string, bool) {
	flag, hasFlag := settingFlags[key]
	if hasFlag && a.cmd != nil {
		if f := a.cmd.Flags().Lookup(strings.TrimPrefix(flag, "--")); f != nil && f.Changed {
			return flag, true
		}
	}
	envVar, hasVar := settingVars[key]
	if hasVar && a.getenv(envVar) != "" {
		return envVar, true
	}
	if a.configSets(key) {
		return key + " in " + a.cfgPath, true
	}
	switch {
	case hasVar && key == "api_key":
		return envVar, true
	case hasFlag:
		return flag, true
	case hasVar:
		return envVar, true
	case key == "proxy":
		return key + " in the config file", true
	}
	return "", false
}

// configSets reports whether the loaded config file sets the setting.
func (a *App) configSets(key string) bool {
	c := a.cfg
	if c == nil || a.cfgPath == "" {
		return false
	}
	switch key {
	case "streams":
		return len(c.Streams) > 0
	case "max_rps":
		return c.MaxRPS != 0
	case "endpoint_rps":
		return c.EndpointRPS != 0
	case "api_key":
		return c.APIKey != ""
	case "api_base":
		return c.APIBase != ""
	case "dest":
		return c.Dest != ""
	case "account":
		return c.Account != ""
	case "proxy":
		return c.Proxy != ""
	case "two_way", "two_way.conflicts":
		return c.TwoWay != nil
	}
	return false
}

// inCLIWords renders an error for the command line: an error about a
// setting (one with a Setting method, as the stripe, engine and dest
// packages return) reads with the words that set it in this invocation
// (settingWord), e.g. "streams: unknown stream" → "--streams: unknown
// stream" and "(api_key)" → "(STRIPE_API_KEY)". Other errors read as they
// are.
func (a *App) inCLIWords(err error) string {
	msg := err.Error()
	var se interface{ Setting() string }
	if !errors.As(err, &se) {
		return msg
	}
	key := se.Setting()
	word, ok := a.settingWord(key)
	if !ok {
		return msg
	}
	if rest, ok := strings.CutPrefix(msg, key+": "); ok {
		return word + ": " + rest
	}
	if strings.Contains(msg, " "+key+": ") {
		return strings.Replace(msg, " "+key+": ", " "+word+": ", 1)
	}
	return strings.Replace(msg, "("+key+")", "("+word+")", 1)
}
