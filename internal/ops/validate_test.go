package ops

import (
	"errors"
	"strings"
	"testing"

	"github.com/stripeline/stripeline/internal/catalog"
)

// customerCreate is a slice of Stripe's POST /v1/customers body schema, as
// the spec writes it.
func customerCreate() *catalog.Schema {
	str := func(n int) *catalog.Schema { return &catalog.Schema{Type: "string", MaxLength: n} }
	unset := &catalog.Schema{Type: "string", Enum: []string{""}}
	return &catalog.Schema{
		Type: "object",
		Properties: map[string]*catalog.Schema{
			"email":       str(512),
			"name":        str(256),
			"balance":     {Type: "integer"},
			"tax_exempt":  {Type: "string", Enum: []string{"", "exempt", "none", "reverse"}},
			"metadata":    {AnyOf: []*catalog.Schema{{Type: "object", AdditionalProperties: &catalog.Schema{Type: "string"}}, unset}},
			"address":     {AnyOf: []*catalog.Schema{{Type: "object", Properties: map[string]*catalog.Schema{"city": str(5000), "country": str(5000)}}, unset}},
			"description": {AnyOf: []*catalog.Schema{str(10), unset}},
			"expand":      {Type: "array", Items: str(5000)},
			"items": {Type: "array", Items: &catalog.Schema{Type: "object", Required: []string{"price"},
				Properties: map[string]*catalog.Schema{"price": str(5000), "quantity": {Type: "integer"}}}},
			"test_mode":  {Type: "boolean"},
			"unit_price": {Type: "string", Format: "decimal"},
		},
		Required: []string{"email"},
	}
}

func TestValidate(t *testing.T) {
	long := strings.Repeat("x", 41)
	many := Params{{"email", "a@b.c"}}
	for i := 0; i < 51; i++ {
		many = append(many, Param{"metadata[k" + strings.Repeat("0", i%3) + string(rune('a'+i%26)) + string(rune('a'+i/26)) + "]", "v"})
	}
	tests := []struct {
		name   string
		params Params
		want   []string // substrings, one per expected problem; nil: valid
	}{
		{"valid", Params{{"email", "a@b.c"}, {"name", "Ann"}, {"metadata[plan]", "pro"}, {"address[city]", "Paris"}, {"balance", "-5"}, {"tax_exempt", "none"}, {"expand[]", "x"}, {"items[0][price]", "p"}, {"test_mode", "true"}, {"unit_price", "1.25"}}, nil},
		{"unset with empty", Params{{"email", "a@b.c"}, {"metadata[plan]", ""}, {"address", ""}, {"tax_exempt", ""}, {"description", ""}}, nil},
		{"unknown with hint", Params{{"emial", "a@b.c"}}, []string{"emial: unknown parameter (did you mean email?)", "email: missing required parameter"}},
		{"unknown nested", Params{{"email", "a"}, {"address[citty]", "P"}}, []string{"address[citty]: unknown parameter (did you mean address[city]?)"}},
		{"unknown no hint", Params{{"email", "a"}, {"zzzzzzzz", "1"}}, []string{"zzzzzzzz: unknown parameter"}},
		{"integer", Params{{"email", "a"}, {"balance", "12.5"}}, []string{`balance: expects an integer, got "12.5"`}},
		{"boolean", Params{{"email", "a"}, {"test_mode", "yes"}}, []string{"test_mode: expects true or false"}},
		{"enum", Params{{"email", "a"}, {"tax_exempt", "maybe"}}, []string{`tax_exempt: "maybe" is not one of exempt, none, reverse`}},
		{"decimal", Params{{"email", "a"}, {"unit_price", "abc"}}, []string{"unit_price: expects a decimal number"}},
		{"max length in anyOf", Params{{"email", "a"}, {"description", "01234567890"}}, []string{"description: is 11 characters; at most 10 allowed"}},
		{"object given a value", Params{{"email", "a"}, {"address", "Paris"}}, []string{`address: expects nested parameters or "" (to unset)`}},
		{"metadata key length", Params{{"email", "a"}, {"metadata[" + long + "]", "v"}}, []string{"key is 41 characters; Stripe allows at most 40"}},
		{"metadata value length", Params{{"email", "a"}, {"metadata[k]", strings.Repeat("v", 501)}}, []string{"metadata[k]: value is 501 characters; Stripe allows at most 500"}},
		{"metadata keys", many, []string{"metadata: has 51 keys; Stripe allows at most 50"}},
		{"metadata nested", Params{{"email", "a"}, {"metadata[a][b]", "v"}}, []string{"metadata[a]: metadata values must be strings"}},
		{"array index", Params{{"email", "a"}, {"items[x][price]", "p"}}, []string{`items[x]: list index "x"`}},
		{"nested required", Params{{"email", "a"}, {"items[0][quantity]", "2"}}, []string{"items[0][price]: missing required parameter"}},
		{"array given a value", Params{{"email", "a"}, {"expand", "x"}}, []string{"expand: expects a list"}},
		{"conflict", Params{{"email", "a"}, {"email[x]", "b"}}, []string{"given both as a value and as an object"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(customerCreate(), tt.params)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate = %v, want a *ValidationError", err)
			}
			if len(ve.Problems) != len(tt.want) {
				t.Fatalf("got %d problems (%v), want %d", len(ve.Problems), err, len(tt.want))
			}
			for i, w := range tt.want {
				if got := ve.Problems[i].String(); !strings.Contains(got, w) {
					t.Errorf("problem %d = %q, want it to contain %q", i, got, w)
				}
			}
		})
	}
}

func TestClosest(t *testing.T) {
	cands := []string{"email", "name", "description", "metadata", "phone"}
	for in, want := range map[string]string{"emial": "email", "Email": "email", "nmae": "name", "descripton": "description", "metdata": "metadata", "xyz": "", "zip": ""} {
		if got := closest(in, cands); got != want {
			t.Errorf("closest(%q) = %q, want %q", in, got, want)
		}
	}
}
