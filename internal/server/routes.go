package server

import "net/http"

// routesInit registers every route. API routes are listed in the OpenAPI
// document (a test holds the two to each other).
func (s *Server) routesInit() {
	api := func(pattern string, h http.HandlerFunc) { s.handle(pattern, s.requireAPI(h)) }
	api("GET /api/v1/pipelines", s.listPipelines)
	api("POST /api/v1/pipelines", s.createPipeline)
	api("GET /api/v1/pipelines/{name}", s.getPipeline)
	api("PATCH /api/v1/pipelines/{name}", s.patchPipeline)
	api("DELETE /api/v1/pipelines/{name}", s.deletePipeline)
	api("POST /api/v1/pipelines/{name}/pause", s.pausePipeline)
	api("POST /api/v1/pipelines/{name}/resume", s.resumePipeline)
	api("POST /api/v1/pipelines/{name}/runs", s.runPipeline)
	api("GET /api/v1/pipelines/{name}/runs", s.listRuns)
	api("GET /api/v1/pipelines/{name}/accounts", s.listAccounts)
	api("GET /api/v1/runs/{id}", s.getRun)
	api("GET /api/v1/runs/{id}/logs", s.runLogs)
	api("POST /api/v1/runs/{id}/rollback", s.rollbackRun)
	api("POST /api/v1/connections/test", s.testConnection)
	api("GET /api/v1/streams", s.listStreams)
	s.handleFunc("GET /api/v1/openapi.json", serveOpenAPI)
	s.handleFunc("/api/", s.apiNotFound)

	s.handleFunc("GET /healthz", s.healthz)
	s.handle("GET /metrics", s.serveMetrics())
	s.handle("POST /webhooks/{pipeline}", WebhookHandler(s.svc, s.metrics, s.log))

	s.handle("GET /static/", staticHandler())
	s.handleFunc("GET /login", s.loginPage)
	s.handleFunc("POST /login", s.login)
	ui := func(pattern string, h http.HandlerFunc) { s.handle(pattern, s.requireUI(h)) }
	ui("POST /logout", s.logout)
	ui("GET /{$}", s.listPage)
	ui("GET /pipelines-live", s.listLive)
	ui("GET /new", s.newPage)
	ui("POST /new", s.createFromForm)
	ui("GET /pipelines/{name}", s.pipelinePage)
	ui("GET /pipelines/{name}/live", s.pipelineLive)
	ui("GET /pipelines/{name}/edit", s.editPage)
	ui("POST /pipelines/{name}/edit", s.updateFromForm)
	ui("POST /pipelines/{name}/run", s.runFromForm)
	ui("POST /pipelines/{name}/pause", s.pauseFromForm(true))
	ui("POST /pipelines/{name}/resume", s.pauseFromForm(false))
	ui("POST /pipelines/{name}/delete", s.deleteFromForm)
	ui("GET /runs/{id}", s.runPage)
	ui("GET /runs/{id}/live", s.runLive)
	ui("POST /runs/{id}/rollback", s.rollbackFromForm)
	ui("/", s.uiNotFound)
}

// apiNotFound answers API paths and methods no route has, in JSON.
func (s *Server) apiNotFound(w http.ResponseWriter, r *http.Request) {
	s.writeError(w, r, &apiError{Status: http.StatusNotFound, Code: "not_found",
		Message: r.Method + " " + r.URL.Path + " is not an API route: /api/v1/openapi.json lists them"})
}

// uiNotFound answers pages no route has.
func (s *Server) uiNotFound(w http.ResponseWriter, r *http.Request) {
	s.renderStatus(w, r, http.StatusNotFound, "Not found", "There is no page at "+r.URL.Path+".")
}
