package stripe

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// DefaultConnectTimeout bounds establishing a connection (DNS lookup and
// TCP connect) with the default transport, so an address that drops
// packets is reported and retried in seconds rather than after the
// system's dial timeout.
const DefaultConnectTimeout = 10 * time.Second

// newTransport is the default transport: Go's, with more idle connections
// per host (the pipe holds dozens of requests), a bounded connect time and
// the configured proxy.
func newTransport(proxy *url.URL, connectTimeout time.Duration) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 128
	d := &net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}
	tr.DialContext = d.DialContext
	if proxy != nil {
		tr.Proxy = http.ProxyURL(proxy)
	}
	return tr
}

// exchange holds the status and headers of one attempt's response, recorded
// by the transport because stripe-go drops them for non-Stripe error bodies.
type exchange struct {
	status int
	header http.Header
}

type exchangeKey struct{}

// recorder is the http.RoundTripper wrapper under stripe-go. It sends every
// request body with its Content-Length, and fills the attempt's exchange.
type recorder struct{ next http.RoundTripper }

// RoundTrip implements http.RoundTripper.
func (r recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	req, err := withContentLength(req)
	if err != nil {
		return nil, err
	}
	res, err := r.next.RoundTrip(req)
	if res != nil {
		if ex, ok := req.Context().Value(exchangeKey{}).(*exchange); ok {
			ex.status = res.StatusCode
			ex.header = res.Header.Clone()
		}
	}
	return res, err
}

// withContentLength returns req with its body buffered and its length set.
//
// stripe-go hands its raw requests a body reader of unknown length, which
// net/http sends with "Transfer-Encoding: chunked". Every Stripe SDK sends a
// Content-Length, and proxies and gateways answer chunked request bodies
// with 411 or drop them, so the body is read here (it is a form of a few
// kilobytes at most) and sent with its length. GetBody lets net/http resend
// it when a connection is reused and found closed.
func withContentLength(req *http.Request) (*http.Request, error) {
	if req.Body == nil || req.Body == http.NoBody || req.ContentLength > 0 {
		return req, nil
	}
	body, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read the request body of %s %s: %w", req.Method, req.URL.Path, err)
	}
	out := req.Clone(req.Context())
	out.TransferEncoding = nil
	out.ContentLength = int64(len(body))
	if len(body) == 0 {
		out.Body, out.GetBody = http.NoBody, func() (io.ReadCloser, error) { return http.NoBody, nil }
		return out, nil
	}
	out.Body = io.NopCloser(bytes.NewReader(body))
	out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	return out, nil
}
