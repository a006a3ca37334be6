package catalog

// Schema is a compact form of an OpenAPI schema from Stripe's spec, enough to
// build, validate and type objects and request parameters. References are kept
// by name (Ref) and resolved with Component, so recursive schemas stay finite.
type Schema struct {
	Ref                  string             `json:"ref,omitempty"`  // component name, e.g. "customer"
	Type                 string             `json:"type,omitempty"` // string|integer|number|boolean|object|array ("" for anyOf/ref)
	Format               string             `json:"format,omitempty"`
	Nullable             bool               `json:"nullable,omitempty"`
	Enum                 []string           `json:"enum,omitempty"`
	MaxLength            int                `json:"max_length,omitempty"`
	Properties           map[string]*Schema `json:"properties,omitempty"`
	Required             []string           `json:"required,omitempty"`
	Items                *Schema            `json:"items,omitempty"`
	AnyOf                []*Schema          `json:"any_of,omitempty"`
	AdditionalProperties *Schema            `json:"additional_properties,omitempty"`
	// Expandable lists the component names this field expands to when it is
	// an id reference (x-expansionResources).
	Expandable []string `json:"expandable,omitempty"`
}

// Operation is one API operation's request shape.
type Operation struct {
	Method string `json:"method"` // GET, POST, DELETE
	Path   string `json:"path"`   // "/v1/customers/{customer}"
	// PathParams are the names of the path's {parameters}, in order.
	PathParams []string `json:"path_params,omitempty"`
	// Query holds the query parameters of a GET or DELETE by name.
	Query map[string]*Schema `json:"query,omitempty"`
	// Body is the form-encoded request body of a POST (an object schema).
	Body *Schema `json:"body,omitempty"`
	// Response is the 200 response schema.
	Response *Schema `json:"response,omitempty"`
}
