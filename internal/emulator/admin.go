package emulator

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// adminArgs are an admin request's arguments, from a JSON body or a form.
type adminArgs map[string]string

// num reads a numeric argument; set is false when it is absent or empty.
func (args adminArgs) num(k string) (f float64, set bool, err error) {
	v, ok := args[k]
	if !ok || v == "" {
		return 0, false, nil
	}
	f, err = strconv.ParseFloat(v, 64)
	return f, true, err
}

// adminError is an admin endpoint's refusal: its status and message.
type adminError struct {
	status int
	msg    string
}

// adminEndpoint answers one admin request with a JSON value, or refuses it.
type adminEndpoint struct {
	post bool // only POST is allowed
	fn   func(e *Emulator, args adminArgs) (any, *adminError)
}

// adminEndpoints are the paths under /_emulator/.
var adminEndpoints = map[string]adminEndpoint{
	"/_emulator/mutate":  {post: true, fn: (*Emulator).adminMutate},
	"/_emulator/advance": {post: true, fn: (*Emulator).adminAdvance},
	"/_emulator/faults":  {post: true, fn: (*Emulator).adminFaults},
	"/_emulator/stats":   {fn: func(e *Emulator, _ adminArgs) (any, *adminError) { return e.Stats(), nil }},
	"/_emulator/objects": {fn: func(e *Emulator, args adminArgs) (any, *adminError) {
		objs := e.Objects(args["account"], args["stream"])
		if objs == nil {
			objs = []json.RawMessage{}
		}
		return objs, nil
	}},
	"/_emulator/counts": {fn: func(e *Emulator, args adminArgs) (any, *adminError) { return e.Counts(args["account"]), nil }},
	"/_emulator/children": {fn: func(e *Emulator, args adminArgs) (any, *adminError) {
		return e.ChildCounts(args["account"], args["stream"]), nil
	}},
	"/_emulator/accounts": {fn: func(e *Emulator, _ adminArgs) (any, *adminError) { return e.Accounts(), nil }},
	"/_emulator/deauthorize": {post: true, fn: func(e *Emulator, args adminArgs) (any, *adminError) {
		if !e.Deauthorize(args["account"]) {
			return nil, &adminError{400, "account: " + args["account"] + " is not a connected account of the emulator"}
		}
		return map[string]any{"deauthorized": args["account"]}, nil
	}},
}

// serveAdmin answers /_emulator/: mutate, advance, stats, faults, objects,
// counts, children (objects per parent of a child stream), accounts. No
// key, no rate limit.
func (e *Emulator) serveAdmin(w http.ResponseWriter, r *http.Request) {
	reply := func(status int, v any) {
		b, _ := json.Marshal(v)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(b)
	}
	fail := func(ae *adminError) {
		reply(ae.status, map[string]any{"error": map[string]string{"message": ae.msg}})
	}
	args, ae := readAdminArgs(r)
	if ae != nil {
		fail(ae)
		return
	}
	ep, ok := adminEndpoints[r.URL.Path]
	switch {
	case !ok:
		fail(&adminError{404, "unknown admin endpoint " + r.URL.Path})
	case ep.post && r.Method != http.MethodPost:
		fail(&adminError{405, "use POST"})
	default:
		v, ae := ep.fn(e, args)
		if ae != nil {
			fail(ae)
			return
		}
		reply(200, v)
	}
}

// readAdminArgs reads a JSON object body (values other than strings kept as
// their JSON) or form values.
func readAdminArgs(r *http.Request) (adminArgs, *adminError) {
	args := adminArgs{}
	if r.Header.Get("Content-Type") == "application/json" && r.Body != nil {
		var m map[string]any
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			return nil, &adminError{400, "invalid JSON body: " + err.Error()}
		}
		for k, v := range m {
			switch x := v.(type) {
			case string:
				args[k] = x
			default:
				b, _ := json.Marshal(x)
				args[k] = string(b)
			}
		}
		return args, nil
	}
	if err := r.ParseForm(); err != nil {
		return nil, &adminError{400, err.Error()}
	}
	for k, v := range r.Form {
		args[k] = v[0]
	}
	return args, nil
}

// adminMutate creates, updates and deletes objects of a stream, with events.
func (e *Emulator) adminMutate(args adminArgs) (any, *adminError) {
	var n [3]int
	for i, k := range []string{"creates", "updates", "deletes"} {
		f, _, err := args.num(k)
		if err != nil {
			return nil, &adminError{400, k + ": " + err.Error()}
		}
		n[i] = int(f)
	}
	if err := e.Mutate(args["account"], args["stream"], n[0], n[1], n[2]); err != nil {
		return nil, &adminError{400, err.Error()}
	}
	return map[string]any{"stream": args["stream"], "creates": n[0], "updates": n[1], "deletes": n[2]}, nil
}

// adminAdvance moves the clock forward.
func (e *Emulator) adminAdvance(args adminArgs) (any, *adminError) {
	f, _, err := args.num("seconds")
	if err != nil || f < 0 {
		return nil, &adminError{400, "seconds must be a non-negative number"}
	}
	e.Advance(time.Duration(f * float64(time.Second)))
	return map[string]any{"now": e.Now().Unix()}, nil
}

// adminFaults changes the knobs given and keeps the others.
func (e *Emulator) adminFaults(args adminArgs) (any, *adminError) {
	e.faultMu.Lock()
	lat, rps, erps, fr, dr := e.delay, 0.0, e.endpointRPS, e.failRate, e.dropRate
	if e.global != nil {
		rps = float64(e.global.Limit())
	}
	e.faultMu.Unlock()
	if v, ok := args["latency"]; ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			return nil, &adminError{400, "latency: " + err.Error()}
		}
		lat = d
	}
	for k, dst := range map[string]*float64{"rps": &rps, "endpoint_rps": &erps, "fail_rate": &fr, "drop_rate": &dr} {
		f, set, err := args.num(k)
		if err != nil {
			return nil, &adminError{400, k + ": " + err.Error()}
		}
		if set {
			*dst = f
		}
	}
	e.SetFaults(lat, rps, erps, fr, dr)
	return map[string]any{"latency": lat.String(), "rps": rps, "endpoint_rps": erps, "fail_rate": fr, "drop_rate": dr}, nil
}
