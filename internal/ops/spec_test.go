package ops

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stripeline/stripeline/internal/catalog"
)

// The validator must accept what Stripe's own request schemas accept. These
// tests read the pinned spec (spec3.json in github.com/stripe/stripe-mock)
// straight from the module cache, independently of the generated catalog.

var (
	specOnce sync.Once
	specDoc  map[string]any
	specErr  error
)

func loadSpec(t *testing.T) map[string]any {
	t.Helper()
	specOnce.Do(func() {
		out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/stripe/stripe-mock").Output()
		if err != nil {
			specErr = fmt.Errorf("locate stripe-mock: %w", err)
			return
		}
		b, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "embedded", "openapi", "spec3.json"))
		if err != nil {
			specErr = err
			return
		}
		specErr = json.Unmarshal(b, &specDoc)
	})
	if specErr != nil {
		t.Skipf("Stripe's spec is not available: %v", specErr)
	}
	return specDoc
}

// specBody converts the form body schema of method path to a catalog.Schema.
func specBody(t *testing.T, method, path string) *catalog.Schema {
	t.Helper()
	doc := loadSpec(t)
	op, _ := doc["paths"].(map[string]any)[path].(map[string]any)[strings.ToLower(method)].(map[string]any)
	if op == nil {
		t.Fatalf("spec has no %s %s", method, path)
	}
	s := op["requestBody"].(map[string]any)["content"].(map[string]any)["application/x-www-form-urlencoded"].(map[string]any)["schema"]
	return convertSchema(doc, s, 0)
}

func convertSchema(doc map[string]any, v any, depth int) *catalog.Schema {
	m, ok := v.(map[string]any)
	if !ok || depth > 12 {
		return &catalog.Schema{}
	}
	if ref, ok := m["$ref"].(string); ok {
		name := strings.TrimPrefix(ref, "#/components/schemas/")
		return convertSchema(doc, doc["components"].(map[string]any)["schemas"].(map[string]any)[name], depth+1)
	}
	s := &catalog.Schema{}
	s.Type, _ = m["type"].(string)
	s.Format, _ = m["format"].(string)
	s.Nullable, _ = m["nullable"].(bool)
	if n, ok := m["maxLength"].(float64); ok {
		s.MaxLength = int(n)
	}
	for _, e := range asSlice(m["enum"]) {
		s.Enum = append(s.Enum, fmt.Sprint(e))
	}
	for _, r := range asSlice(m["required"]) {
		s.Required = append(s.Required, r.(string))
	}
	if props, ok := m["properties"].(map[string]any); ok {
		s.Properties = map[string]*catalog.Schema{}
		for k, p := range props {
			s.Properties[k] = convertSchema(doc, p, depth+1)
		}
	}
	if it, ok := m["items"]; ok {
		s.Items = convertSchema(doc, it, depth+1)
	}
	for _, a := range asSlice(m["anyOf"]) {
		s.AnyOf = append(s.AnyOf, convertSchema(doc, a, depth+1))
	}
	switch ap := m["additionalProperties"].(type) {
	case map[string]any:
		s.AdditionalProperties = convertSchema(doc, ap, depth+1)
	case bool:
		if ap {
			s.AdditionalProperties = &catalog.Schema{}
		}
	}
	return s
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

func TestValidateAgainstStripeSpec(t *testing.T) {
	tests := []struct {
		method, path string
		params       Params
		want         string // "" for valid, else a substring of the error
	}{
		{"POST", "/v1/customers", Params{{"email", "ann@example.com"}, {"name", "Ann"}, {"metadata[plan]", "pro"}, {"address[city]", "Paris"}, {"address[country]", "FR"}, {"balance", "-500"}, {"tax_exempt", "none"}, {"preferred_locales[0]", "fr"}, {"invoice_settings[custom_fields][0][name]", "VAT"}, {"invoice_settings[custom_fields][0][value]", "FR1"}, {"expand[]", "tax_ids"}}, ""},
		{"POST", "/v1/customers", Params{{"metadata", ""}, {"address", ""}, {"invoice_settings[custom_fields]", ""}}, ""},
		{"POST", "/v1/customers", Params{{"emial", "a@b.c"}}, "emial: unknown parameter (did you mean email?)"},
		{"POST", "/v1/customers", Params{{"tax_exempt", "sometimes"}}, `tax_exempt: "sometimes" is not one of exempt, none, reverse`},
		{"POST", "/v1/customers", Params{{"invoice_settings[custom_fields][0][name]", "VAT"}}, "invoice_settings[custom_fields][0][value]: missing required parameter"},
		{"POST", "/v1/customers/{customer}", Params{{"metadata[plan]", ""}, {"email", "x@y.z"}}, ""},
		{"POST", "/v1/prices", Params{{"currency", "eur"}, {"unit_amount", "1200"}, {"product", "prod_1"}, {"recurring[interval]", "month"}, {"active", "true"}, {"unit_amount_decimal", "12.5"}}, ""},
		{"POST", "/v1/prices", Params{{"unit_amount", "1200"}}, "currency: missing required parameter"},
		{"POST", "/v1/prices", Params{{"currency", "eur"}, {"recurring[interval]", "fortnight"}}, "recurring[interval]"},
		{"POST", "/v1/prices", Params{{"currency", "eur"}, {"active", "yes"}}, "active: expects true or false"},
		{"POST", "/v1/subscriptions", Params{{"customer", "cus_1"}, {"items[0][price]", "price_1"}, {"items[0][quantity]", "2"}, {"items[1][price_data][currency]", "eur"}, {"items[1][price_data][product]", "prod_1"}, {"items[1][price_data][recurring][interval]", "month"}, {"items[1][price_data][unit_amount]", "5"}}, ""},
		{"POST", "/v1/subscriptions", Params{{"customer", "cus_1"}, {"items[0][quantity]", "two"}}, `items[0][quantity]: expects an integer, got "two"`},
		{"POST", "/v1/products", Params{{"name", "Gold"}, {"id", "gold"}, {"default_price_data[currency]", "eur"}, {"default_price_data[unit_amount]", "100"}}, ""},
		{"POST", "/v1/coupons", Params{{"percent_off", "12.5"}, {"duration", "once"}, {"id", "SUMMER25"}}, ""},
		{"POST", "/v1/coupons", Params{{"percent_off", "a lot"}}, "percent_off: expects a number"},
	}
	for _, tt := range tests {
		t.Run(tt.path+" "+tt.want, func(t *testing.T) {
			err := Validate(specBody(t, tt.method, tt.path), tt.params)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
