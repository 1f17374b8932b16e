package hub

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"syscall"
)

// Problem explains a failure to a person: what happened, what to do about
// it, which field of the deploy form it concerns, and the raw error as
// Detail (query strings and credentials removed), to be shown folded.
type Problem struct {
	// Kind is stable for programs: unreachable, not_found, damaged,
	// incomplete, no_gguf, offline, hub_error.
	Kind   string `json:"kind"`
	Field  string `json:"field,omitempty"` // search, repo, file, path, name; empty: none in particular
	What   string `json:"what"`
	Fix    string `json:"fix"`
	Detail string `json:"detail,omitempty"`
}

// StatusError is a hub's answer other than the one asked for.
type StatusError struct {
	Hub    string // "Hugging Face", "ModelScope"
	Status int
	What   string // the path asked for, or the file
	Body   string // the start of the answer
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s answered %d %s for %s: %s", e.Hub, e.Status, http.StatusText(e.Status), e.What, e.Body)
}

// CutError is a download that stopped before its end; what arrived is kept
// and the next try resumes after it.
type CutError struct {
	File        string
	Have, Total int64
	Err         error
}

func (e *CutError) Error() string {
	return fmt.Sprintf("download of %s stopped after %d bytes (it resumes on retry): %v", e.File, e.Have, e.Err)
}

func (e *CutError) Unwrap() error { return e.Err }

// Explain classifies err, from a hub of the given source, about repo
// ("" when none). It never returns nil: an error it does not know is a
// hub_error whose What is the sanitised error itself.
func Explain(err error, source Source, repo string) *Problem {
	name, env := "Hugging Face", "HF_ENDPOINT"
	if source == ModelScope {
		name, env = "ModelScope", "MODELSCOPE_DOMAIN"
	}
	p := &Problem{Detail: Sanitize(err.Error())}
	var cut *CutError
	var status *StatusError
	switch {
	case errors.Is(err, ErrOffline):
		p.Kind, p.Field = "offline", "repo"
		p.What = fmt.Sprintf("aimind runs with --offline and the local cache has no copy of %s.", orThis(repo))
		p.Fix = pullFix(repo) + " Or deploy a local .gguf file (Source: Local path)."
	case errors.Is(err, ErrHashMismatch):
		p.Kind, p.Field = "damaged", "file"
		p.What = "The downloaded file does not match the checksum the hub gives for it, so it was thrown away."
		p.Fix = "Retry the deploy. If it fails again, a proxy or mirror (" + env + ") is changing the file, or the hub's copy is broken: try another file or mirror."
	case errors.As(err, &cut):
		p.Kind, p.Field = "incomplete", "file"
		if cut.Total > 0 {
			p.What = fmt.Sprintf("The download of %s stopped at %d%% (%s of %s): the connection was cut.", cut.File, cut.Have*100/cut.Total, mib(cut.Have), mib(cut.Total))
		} else {
			p.What = fmt.Sprintf("The download of %s stopped after %s: the connection was cut.", cut.File, mib(cut.Have))
		}
		p.Fix = "Retry: the download resumes where it stopped. If it keeps stopping, download it with `aimind pull` where the network is steadier, then deploy it again."
	case errors.As(err, &status) && (status.Status == http.StatusNotFound || status.Status == http.StatusUnauthorized || status.Status == http.StatusForbidden):
		p.Kind, p.Field = "not_found", "repo"
		p.What = fmt.Sprintf("%s has no repository %s that aimind may read.", name, orThis(repo))
		p.Fix = "Check the id's spelling (owner/name, as on the repository's page). A private or gated repository needs a token with access: set HF_TOKEN and restart aimind."
		if source == ModelScope {
			p.Fix = "Check the id's spelling (owner/name, as on the repository's page). A private repository needs MODELSCOPE_API_TOKEN: set it and restart aimind."
		}
	case unreachable(err) || (errors.As(err, &status) && status.Status >= 500):
		p.Kind, p.Field = "unreachable", "repo"
		p.What = fmt.Sprintf("%s cannot be reached from this server%s.", name, where(err))
		if status != nil && status.Status >= 500 {
			p.What = fmt.Sprintf("%s is not answering properly (%d %s).", name, status.Status, http.StatusText(status.Status))
		}
		p.Fix = fmt.Sprintf("Check the server's network or proxy; or set %s to a mirror you can reach and restart aimind; or, where the network works, run `aimind pull %s` and serve that cache with --offline; or deploy a local .gguf file (Source: Local path).",
			env, orRepo(repo))
	case errors.Is(err, ErrNoGGUF):
		p.Kind, p.Field = "no_gguf", "repo"
		p.What = fmt.Sprintf("%s has no GGUF file, and aimind serves GGUF files only.", orThis(repo))
		p.Fix = "Choose a repository that offers .gguf files (tick GGUF in the search), or convert the model with llama.cpp's convert_hf_to_gguf.py and deploy the file as a local path."
	default:
		p.Kind = "hub_error"
		p.What = p.Detail
		p.Fix = "Retry; if it fails again, the details below say what went wrong."
		p.Detail = ""
	}
	return p
}

// ErrNoGGUF is returned by Pick for a repository without a GGUF file.
var ErrNoGGUF = errors.New("the repo has no GGUF file")

func orThis(repo string) string {
	if repo == "" {
		return "this repository"
	}
	return repo
}

func orRepo(repo string) string {
	if repo == "" {
		return "OWNER/NAME"
	}
	return repo
}

func pullFix(repo string) string {
	return fmt.Sprintf("Where the network works, run `aimind pull %s` with the same cache (HF_HUB_CACHE), then deploy it again.", orRepo(repo))
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// unreachable reports whether err means the hub could not be reached at
// all: no name, no route, refused, reset, timed out.
func unreachable(err error) bool {
	var dns *net.DNSError
	var op *net.OpError
	var ne net.Error
	switch {
	case errors.As(err, &dns), errors.As(err, &op):
		return true
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return true
	case errors.As(err, &ne) && ne.Timeout():
		return true
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF), errors.Is(err, os.ErrDeadlineExceeded):
		return true // the answer broke off before its headers
	}
	return false
}

// where names the host that could not be reached, from the URL in err.
func where(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil && u.Host != "" {
			return " (" + u.Scheme + "://" + u.Host + ")"
		}
	}
	return ""
}

var (
	urlPattern = regexp.MustCompile(`(?i)\b([a-z][a-z0-9+.-]*://)([^/\s"'<>@]*@)?([^\s"'<>?#]*)(\?[^\s"'<>#]*)?(#[^\s"'<>]*)?`)
	// Hugging Face tokens are "hf_" in lower case and mixed-case letters:
	// matched case-sensitively, so that HF_ENDPOINT in a hint stays.
	secretPattern = regexp.MustCompile(`(?i)(bearer\s+)\S+|(?-i:\bhf_[A-Za-z0-9]{8,})|\baimind_[0-9a-z]+_[0-9a-f]{16,}|(token|key|signature|password|secret)=[^\s&"']+`)
)

// Sanitize removes what must not be shown or logged from an error text:
// credentials in URLs, query strings (signed CDN links carry their
// signature there) and fragments, bearer tokens and Hugging Face or aimind
// keys. It also cuts the text at 2000 bytes.
func Sanitize(s string) string {
	s = urlPattern.ReplaceAllStringFunc(s, func(u string) string {
		m := urlPattern.FindStringSubmatch(u)
		out := m[1] + m[3]
		if m[4] != "" {
			out += "?…"
		}
		return out
	})
	s = secretPattern.ReplaceAllStringFunc(s, func(x string) string {
		if i := strings.IndexAny(x, " \t=_"); i > 0 && (strings.HasPrefix(strings.ToLower(x), "bearer") || strings.Contains(x, "=")) {
			return x[:i+1] + "…"
		}
		if strings.HasPrefix(x, "hf_") {
			return "hf_…"
		}
		return "aimind_…"
	})
	if len(s) > 2000 {
		s = s[:2000] + "…"
	}
	return s
}
