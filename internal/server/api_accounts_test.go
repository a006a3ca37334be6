package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stripeline/stripeline/internal/pipeline"
)

// TestAccountsOfAFleetInAPIAndUI: a pipeline of every account, made over
// the API, runs; GET …/accounts and the pipeline's page show each account
// with its standing, its last job's state and worker, and its lag.
func TestAccountsOfAFleetInAPIAndUI(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{connected: 2})
	body := f.pipelineJSON("plat")
	body["connection"].(map[string]any)["accounts"] = "all"
	body["connection"].(map[string]any)["platform_rps"] = 400
	var created struct {
		Connection struct {
			Accounts struct {
				Select      string  `json:"select"`
				PlatformRPS float64 `json:"platform_rps"`
			} `json:"accounts"`
		} `json:"connection"`
	}
	f.api("POST", "/api/v1/pipelines", body, http.StatusCreated).JSON(t, &created)
	if created.Connection.Accounts.Select != "all" || created.Connection.Accounts.PlatformRPS != 400 {
		t.Fatalf("created connection %+v", created.Connection)
	}
	if run := f.runAndWait("plat"); run.Status != pipeline.RunSucceeded {
		t.Fatalf("run %s %s", run.Status, run.Error)
	}
	var got struct {
		Accounts []pipeline.AccountStatus `json:"accounts"`
	}
	f.api("GET", "/api/v1/pipelines/plat/accounts", nil, http.StatusOK).JSON(t, &got)
	if len(got.Accounts) != 3 {
		t.Fatalf("%d accounts, want the platform and 2", len(got.Accounts))
	}
	for _, a := range got.Accounts {
		if a.Standing != pipeline.StandingActive || a.State != pipeline.RunSucceeded || a.Worker != f.svc.WorkerID() || a.LagSeconds < 0 || a.Rows == 0 {
			t.Errorf("account %q: %+v", a.Account, a)
		}
	}
	page := login(t, f).get("/pipelines/plat", http.StatusOK)
	for _, want := range []string{`id="accounts"`, "Accounts (3)", got.Accounts[1].Account, f.svc.WorkerID(), "platform"} {
		if !strings.Contains(page, want) {
			t.Errorf("the pipeline page lacks %q", want)
		}
	}
	var e apiErr
	bad := f.pipelineJSON("bad")
	bad["connection"].(map[string]any)["accounts"] = "cus_1"
	f.api("POST", "/api/v1/pipelines", bad, http.StatusBadRequest).JSON(t, &e)
	if e.Error.Field != "connection.accounts" || !strings.Contains(e.Error.Message, "acct_") {
		t.Fatalf("bad accounts: %+v", e)
	}
	bad["connection"].(map[string]any)["accounts"] = "all"
	bad["connection"].(map[string]any)["account"] = "acct_1"
	f.api("POST", "/api/v1/pipelines", bad, http.StatusBadRequest).JSON(t, &e)
	if e.Error.Field != "connection.accounts" {
		t.Fatalf("accounts with account: %+v", e)
	}
	f.api("GET", "/api/v1/pipelines/nope/accounts", nil, http.StatusNotFound)
}
