package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stripeline/stripeline/internal/config"
)

func TestParse(t *testing.T) {
	t.Setenv("SL_TEST_KEY", "sk_test_fromenv123")
	c := config.Default()
	err := config.Parse([]byte(`
api_key: ${SL_TEST_KEY}
max_rps: 50
dest: sqlite://x.db
streams:
  customers: {fields: [email, name]}
pipelines:
  - {name: nightly, dest: "postgres://db/x", schedule: 24h}
`), c)
	if err != nil {
		t.Fatal(err)
	}
	if c.APIKey != "sk_test_fromenv123" || c.MaxRPS != 50 || len(c.Streams["customers"].Fields) != 2 || c.Pipelines[0].Name != "nightly" {
		t.Fatalf("parsed %+v", c)
	}
	if c.Server.Addr != "127.0.0.1:8080" {
		t.Fatalf("default server addr lost: %q", c.Server.Addr)
	}
}

func TestParseErrorsNameTheField(t *testing.T) {
	for _, tc := range []struct{ yaml, field string }{
		{"api_key: pk_live_123", "api_key"},
		{"api_base: ftp://x", "api_base"},
		{"account: cus_123", "account"},
		{"max_rps: -1", "max_rps"},
		{"pipelines: [{dest: sqlite://x}]", "pipelines[0].name"},
		{"pipelines: [{name: a, dest: x}, {name: a, dest: y}]", "pipelines[1].name"},
		{"apikey: sk_test_123", "apikey"},
	} {
		err := config.Parse([]byte(tc.yaml), config.Default())
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%q: err = %v, want it to name %s", tc.yaml, err, tc.field)
		}
		var ce *config.ConfigError
		if tc.field != "apikey" && !errors.As(err, &ce) {
			t.Errorf("%q: %T is not a *ConfigError", tc.yaml, err)
		}
		if strings.Contains(err.Error(), "sk_test_123") {
			t.Errorf("%q: the error shows the key: %v", tc.yaml, err)
		}
	}
}

func TestLoad(t *testing.T) {
	if _, err := config.Load(filepath.Join(t.TempDir(), "missing.yaml"), false); err != nil {
		t.Fatalf("missing optional file: %v", err)
	}
	if _, err := config.Load(filepath.Join(t.TempDir(), "missing.yaml"), true); err == nil {
		t.Fatal("missing required file accepted")
	}
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte("dest: csv://out\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(p, true)
	if err != nil || c.Dest != "csv://out" {
		t.Fatalf("load: %+v %v", c, err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("api_key: sk_test_1\nmax_rps: 3\n"))
	f.Add([]byte("pipelines: [{name: a, dest: b}]"))
	f.Add([]byte("streams: {customers: {fields: [a]}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := config.Default()
		if err := config.Parse(data, c); err == nil {
			if verr := c.Validate(); verr != nil {
				t.Fatalf("Parse accepted a config Validate rejects: %v", verr)
			}
		}
	})
}
