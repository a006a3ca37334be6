package emulator

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// serveAdmin answers /_emulator/: mutate, advance, stats, faults, objects,
// counts, children (objects per parent of a child stream). No key, no rate
// limit.
func (e *Emulator) serveAdmin(w http.ResponseWriter, r *http.Request) {
	reply := func(status int, v any) {
		b, _ := json.Marshal(v)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(b)
	}
	fail := func(status int, msg string) {
		reply(status, map[string]any{"error": map[string]string{"message": msg}})
	}
	args := map[string]string{}
	if r.Header.Get("Content-Type") == "application/json" && r.Body != nil {
		var m map[string]any
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			fail(400, "invalid JSON body: "+err.Error())
			return
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
	} else {
		if err := r.ParseForm(); err != nil {
			fail(400, err.Error())
			return
		}
		for k, v := range r.Form {
			args[k] = v[0]
		}
	}
	num := func(k string) (float64, bool, error) {
		v, ok := args[k]
		if !ok || v == "" {
			return 0, false, nil
		}
		f, err := strconv.ParseFloat(v, 64)
		return f, true, err
	}
	switch r.URL.Path {
	case "/_emulator/mutate":
		if r.Method != http.MethodPost {
			fail(405, "use POST")
			return
		}
		var n [3]int
		for i, k := range []string{"creates", "updates", "deletes"} {
			f, _, err := num(k)
			if err != nil {
				fail(400, k+": "+err.Error())
				return
			}
			n[i] = int(f)
		}
		if err := e.Mutate(args["account"], args["stream"], n[0], n[1], n[2]); err != nil {
			fail(400, err.Error())
			return
		}
		reply(200, map[string]any{"stream": args["stream"], "creates": n[0], "updates": n[1], "deletes": n[2]})
	case "/_emulator/advance":
		if r.Method != http.MethodPost {
			fail(405, "use POST")
			return
		}
		f, _, err := num("seconds")
		if err != nil || f < 0 {
			fail(400, "seconds must be a non-negative number")
			return
		}
		e.Advance(time.Duration(f * float64(time.Second)))
		reply(200, map[string]any{"now": e.Now().Unix()})
	case "/_emulator/stats":
		reply(200, e.Stats())
	case "/_emulator/faults":
		if r.Method != http.MethodPost {
			fail(405, "use POST")
			return
		}
		e.faultMu.Lock()
		lat, rps, erps, fr, dr := e.delay, 0.0, e.endpointRPS, e.failRate, e.dropRate
		if e.global != nil {
			rps = float64(e.global.Limit())
		}
		e.faultMu.Unlock()
		if v, ok := args["latency"]; ok {
			d, err := time.ParseDuration(v)
			if err != nil {
				fail(400, "latency: "+err.Error())
				return
			}
			lat = d
		}
		for k, dst := range map[string]*float64{"rps": &rps, "endpoint_rps": &erps, "fail_rate": &fr, "drop_rate": &dr} {
			f, set, err := num(k)
			if err != nil {
				fail(400, k+": "+err.Error())
				return
			}
			if set {
				*dst = f
			}
		}
		e.SetFaults(lat, rps, erps, fr, dr)
		reply(200, map[string]any{"latency": lat.String(), "rps": rps, "endpoint_rps": erps, "fail_rate": fr, "drop_rate": dr})
	case "/_emulator/objects":
		objs := e.Objects(args["account"], args["stream"])
		if objs == nil {
			objs = []json.RawMessage{}
		}
		reply(200, objs)
	case "/_emulator/counts":
		reply(200, e.Counts(args["account"]))
	case "/_emulator/children":
		reply(200, e.ChildCounts(args["account"], args["stream"]))
	case "/_emulator/accounts":
		reply(200, e.Accounts())
	default:
		fail(404, "unknown admin endpoint "+r.URL.Path)
	}
}
