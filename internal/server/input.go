package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/stripeline/stripeline/internal/history"
	"github.com/stripeline/stripeline/internal/pipeline"
	"github.com/stripeline/stripeline/internal/stripe"
	"github.com/stripeline/stripeline/internal/twoway"
)

// pipelineInput is the body of POST /api/v1/pipelines and PATCH
// /api/v1/pipelines/{name}: every field optional for PATCH (a field left
// out keeps its value), the API key write-only.
type pipelineInput struct {
	Name         *string              `json:"name"`
	DisplayName  *string              `json:"display_name"`
	Description  *string              `json:"description"`
	Connection   *connectionInput     `json:"connection"`
	Dest         *string              `json:"dest"`
	Streams      *[]string            `json:"streams"`
	Fields       *map[string][]string `json:"fields"`
	StartDate    *string              `json:"start_date"`
	LookbackDays *int                 `json:"lookback_days"`
	WindowDays   *int                 `json:"window_days"`
	Schedule     *string              `json:"schedule"`
	MaxRPS       *float64             `json:"max_rps"`
	EndpointRPS  *float64             `json:"endpoint_rps"`
	Concurrency  *int                 `json:"concurrency"`
	History      *history.Policy      `json:"history"`
	// TwoWay sets the two-way option; {"streams": {}} turns it off.
	TwoWay *twoway.Config `json:"two_way"`
}

// connectionInput is a pipeline's connection as a client sends it: a key
// reference (env:NAME) or a key to store encrypted.
type connectionInput struct {
	KeyRef  *string `json:"key_ref"`
	APIKey  *string `json:"api_key"`
	Account *string `json:"account"`
	APIBase *string `json:"api_base"`
	Proxy   *string `json:"proxy"`
	// Accounts and PlatformRPS make the pipeline a fleet (accounts.go).
	Accounts    *string  `json:"accounts"`
	PlatformRPS *float64 `json:"platform_rps"`
}

// decodeJSON reads a JSON body strictly: unknown fields and wrong types are
// errors naming the field.
func decodeJSON(w http.ResponseWriter, r *http.Request, into any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return badRequest("", fmt.Sprintf("the request body could not be read (at most %d bytes): %v", maxBody, err))
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return badRequest("", "the request needs a JSON body")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return badRequest("", "the body holds more than one JSON value: send one object")
	}
	return nil
}

// jsonError turns a decoding error into one naming the field.
func jsonError(err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		return badRequest(te.Field, fmt.Sprintf("%s: expected %s, got a JSON %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value))
	case errors.As(err, &se):
		return badRequest("", fmt.Sprintf("the body is not valid JSON (at byte %d): %v", se.Offset, err))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return badRequest(f, fmt.Sprintf("%s: unknown field (see /api/v1/openapi.json for the fields a pipeline has)", f))
	}
	return badRequest("", "the body is not valid JSON: "+err.Error())
}

func jsonKind(k string) string {
	switch k {
	case "int", "int64", "float64":
		return "a number"
	case "slice":
		return "an array"
	case "map", "struct":
		return "an object"
	}
	return "a " + k
}

// apply sets the fields the input holds on p.
func (in *pipelineInput) apply(p *pipeline.Pipeline) error {
	set(&p.DisplayName, in.DisplayName)
	set(&p.Description, in.Description)
	set(&p.Dest, in.Dest)
	set(&p.Streams, in.Streams)
	set(&p.Fields, in.Fields)
	set(&p.LookbackDays, in.LookbackDays)
	set(&p.WindowDays, in.WindowDays)
	set(&p.MaxRPS, in.MaxRPS)
	set(&p.EndpointRPS, in.EndpointRPS)
	set(&p.Concurrency, in.Concurrency)
	if in.History != nil {
		p.History = in.History
	}
	if in.TwoWay != nil {
		p.TwoWay = in.TwoWay
		if !in.TwoWay.Enabled() {
			p.TwoWay = nil
		}
	}
	if in.StartDate != nil {
		t, err := parseDate(*in.StartDate)
		if err != nil {
			return err
		}
		p.StartDate = t
	}
	if in.Schedule != nil {
		sch, err := pipeline.ParseSchedule(*in.Schedule)
		if err != nil {
			return err
		}
		p.Schedule = sch
	}
	if in.Connection != nil {
		if err := in.Connection.apply(&p.Connection); err != nil {
			return err
		}
	}
	return nil
}

// apply sets the connection fields given. A new key replaces a reference
// and a reference drops a stored key; giving neither keeps what is there.
func (in *connectionInput) apply(c *pipeline.Connection) error {
	if err := in.applyAccounts(c); err != nil {
		return err
	}
	set(&c.Account, in.Account)
	set(&c.APIBase, in.APIBase)
	set(&c.Proxy, in.Proxy)
	if in.KeyRef != nil {
		c.KeyRef, c.APIKey = *in.KeyRef, ""
	}
	if in.APIKey != nil && *in.APIKey != "" {
		c.APIKey = stripe.Secret(strings.TrimSpace(*in.APIKey))
		if in.KeyRef == nil || *in.KeyRef == "" {
			c.KeyRef = pipeline.KeyRefStored
		}
	}
	return nil
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// parseDate reads a start date: YYYY-MM-DD (UTC midnight), RFC 3339, or ""
// for none.
func parseDate(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, badRequest("start_date", fmt.Sprintf("start_date: %q is not a date: use YYYY-MM-DD, e.g. 2024-01-31", s))
}
