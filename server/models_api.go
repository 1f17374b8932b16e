package server

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/aimind/aimind/hub"
	"github.com/aimind/aimind/modelfile"
	"github.com/aimind/aimind/models"
)

// handleModelsAPI serves the admin model API:
// GET/POST /api/models, GET/DELETE /api/models/{name},
// POST /api/models/{name}/stop and /start, GET /api/models/{name}/logs.
func (s *Server) handleModelsAPI(ctx *fasthttp.RequestCtx) {
	if !s.session(ctx, false) {
		return
	}
	path := strings.TrimPrefix(string(ctx.Path()), "/api/models")
	method := string(ctx.Method())
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case path == "" && method == "GET":
		writeJSON(ctx, fasthttp.StatusOK, map[string]any{"data": s.models.List()})
	case path == "" && method == "POST":
		var req models.Request
		if err := decodeJSON(ctx.PostBody(), &req); err != nil {
			writeError(ctx, fasthttp.StatusBadRequest, typeInvalid, err.Error())
			return
		}
		rec, err := s.models.Deploy(req, false)
		if err != nil {
			p := models.Explain(err, req.Source, req.Repo)
			status, typ := fasthttp.StatusBadRequest, typeInvalid
			if errors.Is(err, models.ErrDuplicate) {
				status = fasthttp.StatusConflict
			}
			writeProblem(ctx, status, typ, p)
			return
		}
		writeJSON(ctx, fasthttp.StatusAccepted, rec)
	case len(parts) == 1 && method == "GET":
		rec, err := s.models.Get(parts[0])
		if err != nil {
			s.modelError(ctx, err)
			return
		}
		writeJSON(ctx, fasthttp.StatusOK, rec)
	case len(parts) == 2 && method == "GET" && parts[1] == "logs":
		logs, err := s.models.Logs(parts[0])
		if err != nil {
			s.modelError(ctx, err)
			return
		}
		writeJSON(ctx, fasthttp.StatusOK, map[string]any{"data": logs})
	case len(parts) == 1 && method == "DELETE":
		// files=true removes the file aimind downloaded (unless another
		// model uses it); keep_file=true keeps it whatever files says.
		files, _ := strconv.ParseBool(string(ctx.QueryArgs().Peek("files")))
		if keep, _ := strconv.ParseBool(string(ctx.QueryArgs().Peek("keep_file"))); keep {
			files = false
		}
		d, err := s.models.Delete(parts[0], files)
		if err != nil {
			s.modelError(ctx, err)
			return
		}
		writeJSON(ctx, fasthttp.StatusOK, struct {
			OK bool `json:"ok"`
			models.Deleted
		}{true, d})
	case len(parts) == 2 && method == "POST" && (parts[1] == "stop" || parts[1] == "start"):
		var rec models.Record
		var err error
		if parts[1] == "stop" {
			rec, err = s.models.Stop(parts[0])
		} else {
			rec, err = s.models.Start(parts[0])
		}
		if err != nil {
			s.modelError(ctx, err)
			return
		}
		writeJSON(ctx, fasthttp.StatusOK, rec)
	default:
		writeError(ctx, fasthttp.StatusNotFound, typeNotFound, "no route "+method+" "+string(ctx.Path()))
	}
}

func (s *Server) modelError(ctx *fasthttp.RequestCtx, err error) {
	switch {
	case errors.Is(err, models.ErrUnknown):
		writeError(ctx, fasthttp.StatusNotFound, typeNotFound, err.Error())
	case errors.Is(err, models.ErrDuplicate):
		writeError(ctx, fasthttp.StatusConflict, typeInvalid, err.Error())
	default:
		writeError(ctx, fasthttp.StatusBadRequest, typeInvalid, err.Error())
	}
}

// handleHub serves GET /api/hub/search?source=&q=&gguf=true and
// GET /api/hub/files?source=&repo=&revision=.
func (s *Server) handleHub(ctx *fasthttp.RequestCtx) {
	if !s.session(ctx, false) {
		return
	}
	if string(ctx.Method()) != "GET" {
		writeError(ctx, fasthttp.StatusMethodNotAllowed, typeInvalid, "use GET")
		return
	}
	args := ctx.QueryArgs()
	source := hub.Source(string(args.Peek("source")))
	if source == "" {
		source = hub.HuggingFace
	}
	h := s.opts.Hubs[source]
	if h == nil {
		writeError(ctx, fasthttp.StatusBadRequest, typeInvalid, "unknown source "+string(source)+" (huggingface or modelscope)")
		return
	}
	rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	switch string(ctx.Path()) {
	case "/api/hub/search":
		q := string(args.Peek("q"))
		if len(q) > 200 {
			writeError(ctx, fasthttp.StatusBadRequest, typeInvalid, "the search text is too long")
			return
		}
		gguf := string(args.Peek("gguf")) != "false"
		repos, err := h.Search(rctx, q, gguf, 30)
		if errors.Is(err, hub.ErrNoSearch) {
			writeError(ctx, fasthttp.StatusNotImplemented, typeInvalid, err.Error())
			return
		}
		if err != nil {
			p := hub.Explain(err, source, "")
			if p.Kind == "unreachable" {
				p.What += " You can still type a repository id (owner/name) that was downloaded before: its files come from the local cache."
			}
			p.Field = "search"
			status, typ := hubStatus(p)
			writeProblem(ctx, status, typ, p)
			return
		}
		if repos == nil {
			repos = []hub.Repo{}
		}
		// Most downloaded first, whatever order the hub (or a mirror) kept.
		slices.SortStableFunc(repos, func(a, b hub.Repo) int { return cmp.Compare(b.Downloads, a.Downloads) })
		writeJSON(ctx, fasthttp.StatusOK, map[string]any{"data": repos})
	case "/api/hub/files":
		repo := string(args.Peek("repo"))
		rev := string(args.Peek("revision"))
		if rev == "" {
			rev = hub.DefaultRevision(source)
		}
		l, err := h.List(rctx, repo, rev)
		if errors.Is(err, hub.ErrInvalid) {
			writeError(ctx, fasthttp.StatusBadRequest, typeInvalid, err.Error())
			return
		}
		if err != nil {
			p := hub.Explain(err, source, repo)
			status, typ := hubStatus(p)
			writeProblem(ctx, status, typ, p)
			return
		}
		type fileView struct {
			hub.File
			MemoryEstimate int64 `json:"memory_estimate"`
		}
		def := ""
		var shape *modelfile.HeaderShape
		if f, err := hub.Pick(l.Files, "", ""); err == nil {
			def = f.Path
			shape = s.headerShape(rctx, h, l, f)
		}
		files := []fileView{}
		for _, f := range hub.GGUFs(l.Files) {
			// Before download the type and size are known, and the shape
			// when the default file's first bytes could be read (a Range
			// request): engine.Plan's estimate for the path this CPU will
			// take (the BF16 copy, a decoder's key/value cache included);
			// without the shape, an allowance for the working memory.
			est := s.models.EstimateFile(f.Quant, f.Size)
			if shape != nil {
				est = s.models.EstimateShaped(*shape, f.Quant, f.Size)
			}
			files = append(files, fileView{File: f, MemoryEstimate: est})
		}
		spec := hub.Spec{Repo: repo}
		ans := map[string]any{"repo": repo, "commit": l.Commit, "files": files, "default": def, "name": spec.ServedName()}
		if l.FromCache {
			// The hub is down; say so, and that these are the cached files.
			ans["from_cache"] = true
			ans["notice"] = hubName(source) + " cannot be reached: these are the files of " + repo + " in the local cache, downloaded before."
		}
		writeJSON(ctx, fasthttp.StatusOK, ans)
	default:
		writeError(ctx, fasthttp.StatusNotFound, typeNotFound, "no route "+string(ctx.Path()))
	}
}

// headerShape reads the model's shape from the first 4 MiB of f, where the
// hub can serve them (a Range request, or the cache), within 10 s; nil when
// it cannot, and the estimate falls back to the file's size.
func (s *Server) headerShape(ctx context.Context, h hub.Hub, l hub.Listing, f hub.File) *modelfile.HeaderShape {
	hr, ok := h.(interface {
		Header(context.Context, hub.Listing, hub.File, int64) ([]byte, error)
	})
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	b, err := hr.Header(ctx, l, f, 4<<20)
	if err != nil {
		s.opts.Logger.Debug("cannot read the model's header before download; the estimate uses its size", "repo", l.Repo, "file", f.Path, "err", hub.Sanitize(err.Error()))
		return nil
	}
	shape, err := modelfile.ReadHeaderShape(b)
	if err != nil {
		s.opts.Logger.Debug("cannot read the model's shape from its header; the estimate uses its size", "repo", l.Repo, "file", f.Path, "err", err)
		return nil
	}
	return &shape
}
