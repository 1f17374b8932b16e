package models

import (
	"errors"
	"fmt"
	"os"

	"github.com/aimind/aimind/hub"
	"github.com/aimind/aimind/modelfile"
)

// Explain says what err, from a deploy or from getting a model ready,
// means for a person and what to do, with the field of the deploy form it
// concerns. Hub errors are classified by hub.Explain.
func Explain(err error, source hub.Source, repo string) *hub.Problem {
	p := &hub.Problem{Detail: hub.Sanitize(err.Error())}
	switch {
	case errors.Is(err, ErrDuplicate):
		p.Kind, p.Field = "duplicate", "name"
		p.What, p.Fix = "A model with this name exists already.", "Choose another name, or delete the other model first."
	case errors.Is(err, ErrBadName):
		p.Kind, p.Field = "bad_name", "name"
		p.What, p.Fix = "This name cannot be used.", "Use 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit."
	case errors.Is(err, ErrNoMemory):
		p.Kind = "no_memory"
		p.What = "There is not enough memory for this model next to the ones already loaded."
		p.Fix = "Stop or delete another model, choose a smaller quantisation (Q4_K_M rather than Q8_0 or F16), or raise --memory-budget if it was set too low."
	case errors.Is(err, ErrLoadInterrupted):
		p.Kind, p.Field = "load_interrupted", "file"
		p.What = "aimind stopped while llama.cpp was loading this file; it may have crashed on it."
		p.Fix = "Replace the file (delete the model and deploy it again), or press Retry if the stop had another cause."
	case errors.Is(err, modelfile.ErrNotReranker):
		p.Kind, p.Field = "not_reranker", fileField(source)
		p.What = "This GGUF file is not a cross-encoder reranker (an embedding or chat model, for example)."
		p.Fix = "Choose a reranker's GGUF, such as gpustack/bge-reranker-v2-m3-GGUF."
	case errors.Is(err, modelfile.ErrDamaged):
		p.Kind, p.Field = "damaged", fileField(source)
		p.What = "The file is not a complete, valid GGUF file."
		p.Fix = "Download it again (for a hub model: delete it without keeping the file, then deploy again); for a local file, copy it again and check its sha256."
	case source == hub.Local && errors.Is(err, os.ErrNotExist):
		p.Kind, p.Field = "no_file", "path"
		p.What, p.Fix = "There is no file at this path on the server.", "Give the full path of a .gguf file on the machine aimind runs on (not on your computer)."
	case source == hub.Local && errors.Is(err, os.ErrPermission):
		p.Kind, p.Field = "no_access", "path"
		p.What, p.Fix = "aimind may not read this file.", fmt.Sprintf("Make it readable by the user aimind runs as (uid %d).", os.Getuid())
	case errors.Is(err, hub.ErrInvalid):
		p.Kind, p.Field = "invalid", "repo"
		if source == hub.Local {
			p.Field = "path"
		}
		p.What, p.Fix = p.Detail, "Correct the field and try again."
		p.Detail = ""
	case source == hub.Local:
		p.Kind, p.Field = "local_error", "path"
		p.What, p.Fix = p.Detail, "Check the path and the file."
		p.Detail = ""
	default:
		return hub.Explain(err, source, repo)
	}
	return p
}

func fileField(source hub.Source) string {
	if source == hub.Local {
		return "path"
	}
	return "file"
}
