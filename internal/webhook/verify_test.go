package webhook_test

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stripeline/stripeline/internal/emulator"
	"github.com/stripeline/stripeline/internal/webhook"
)

const body = `{"id":"evt_1","object":"event","type":"customer.updated","created":1700000000,"data":{"object":{"id":"cus_1","object":"customer"}}}`

func TestVerify(t *testing.T) {
	now := time.Now()
	old, cur := webhook.Secret("whsec_old0000000000000000"), webhook.Secret("whsec_new1111111111111111")
	signed := func(s webhook.Secret, at time.Time) string { return emulator.Sign(string(s), []byte(body), at) }
	two := signed(cur, now) + ",v1=" + strings.Repeat("0", 64) // several v1 values: any may match
	for _, tc := range []struct {
		name    string
		v       webhook.Verifier
		payload string
		header  string
		want    error
	}{
		{"valid", webhook.Verifier{Secrets: []webhook.Secret{cur}}, body, signed(cur, now), nil},
		{"several v1 values", webhook.Verifier{Secrets: []webhook.Secret{cur}}, body, two, nil},
		{"rotating: old secret still accepted", webhook.Verifier{Secrets: []webhook.Secret{cur, old}}, body, signed(old, now), nil},
		{"rotated out", webhook.Verifier{Secrets: []webhook.Secret{cur}}, body, signed(old, now), webhook.ErrBadSignature},
		{"body changed", webhook.Verifier{Secrets: []webhook.Secret{cur}}, strings.Replace(body, "cus_1", "cus_2", 1), signed(cur, now), webhook.ErrBadSignature},
		{"stale", webhook.Verifier{Secrets: []webhook.Secret{cur}}, body, signed(cur, now.Add(-10*time.Minute)), webhook.ErrStale},
		{"stale within a longer tolerance", webhook.Verifier{Secrets: []webhook.Secret{cur}, Tolerance: time.Hour}, body, signed(cur, now.Add(-10*time.Minute)), nil},
		{"unsigned", webhook.Verifier{Secrets: []webhook.Secret{cur}}, body, "", webhook.ErrNotSigned},
		{"malformed header", webhook.Verifier{Secrets: []webhook.Secret{cur}}, body, "t=yesterday,v1=00", webhook.ErrBadHeader},
		{"no secret", webhook.Verifier{}, body, signed(cur, now), webhook.ErrNoSecret},
		{"not an event", webhook.Verifier{Secrets: []webhook.Secret{cur}}, `{"object":"customer"}`, emulator.Sign(string(cur), []byte(`{"object":"customer"}`), now), webhook.ErrNotEvent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, typ, err := tc.v.Verify([]byte(tc.payload), tc.header)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if tc.want == nil && (id != "evt_1" || typ != "customer.updated") {
				t.Errorf("id %q type %q", id, typ)
			}
		})
	}
	big := make([]byte, webhook.MaxBody+1)
	if _, _, err := (webhook.Verifier{Secrets: []webhook.Secret{cur}}).Verify(big, signed(cur, now)); !errors.Is(err, webhook.ErrTooLarge) {
		t.Errorf("oversized body: %v", err)
	}
}

func TestSecretNeverPrints(t *testing.T) {
	s := webhook.Secret("whsec_abcdefghijklmnopqrstuvwx")
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "secret", s)
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %s %#v", s, s, s), logged.String()} {
		if strings.Contains(out, "abcdefgh") {
			t.Errorf("secret printed: %s", out)
		}
	}
}
