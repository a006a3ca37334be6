package emulator

import "regexp"

// emailShape is the shape Stripe demands of a customer's email: something,
// one @, a domain with a dot, no spaces.
var emailShape = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s.]+$`)

// checkEmail refuses a customer's email that is not an address, as Stripe
// does (400, code email_invalid, param email). An empty email unsets it.
func checkEmail(d *streamDef, params map[string]any) *apiError {
	if d.name != "customers" {
		return nil
	}
	v, ok := params["email"].(string)
	if !ok || v == "" || emailShape.MatchString(v) {
		return nil
	}
	return &apiError{status: 400, typ: "invalid_request_error", code: "email_invalid", param: "email", msg: "Invalid email address: " + v}
}
