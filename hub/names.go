// Package hub finds and downloads reranker GGUFs from Hugging Face (or a
// mirror) and ModelScope, into the cache layout Hugging Face's own tools use.
// Every repo id, revision and file name from a user or a hub is validated
// before a path is built from it.
package hub

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// ErrInvalid is returned for repo ids, revisions or file names that cannot
// be used safely.
var ErrInvalid = errors.New("invalid name")

var (
	repoPart   = `[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?`
	repoRegex  = regexp.MustCompile(`^` + repoPart + `/` + repoPart + `$`)
	revRegex   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$`)
	fileRegex  = regexp.MustCompile(`^[A-Za-z0-9_.+-][A-Za-z0-9_.+ /()-]{0,254}$`)
	hashRegex  = regexp.MustCompile(`^[0-9a-f]{64}$`)
	quantRegex = regexp.MustCompile(`(?i)[-._](f32|f16|fp16|bf16|q[2-8](?:_[0-9a-z]+)*|iq[1-4](?:_[a-z0-9]+)*)$`)
)

// ValidRepo checks an "owner/name" repo id.
func ValidRepo(repo string) error {
	if !repoRegex.MatchString(repo) || strings.Contains(repo, "..") {
		return fmt.Errorf("%w: repo id %q (want owner/name of letters, digits, '.', '_' or '-')", ErrInvalid, repo)
	}
	return nil
}

// ValidRevision checks a branch, tag or commit.
func ValidRevision(rev string) error {
	if !revRegex.MatchString(rev) || strings.Contains(rev, "..") || strings.HasSuffix(rev, "/") || strings.Contains(rev, "//") {
		return fmt.Errorf("%w: revision %q", ErrInvalid, rev)
	}
	return nil
}

// ValidFile checks a file path inside a repo: relative, no "..", no odd
// characters.
func ValidFile(name string) error {
	if !fileRegex.MatchString(name) || strings.Contains(name, "..") || strings.Contains(name, "//") ||
		strings.HasPrefix(name, "/") || !filepath.IsLocal(filepath.FromSlash(name)) || path.Clean(name) != name {
		return fmt.Errorf("%w: file name %q", ErrInvalid, name)
	}
	return nil
}

// ValidHash checks a lower-case hex SHA-256.
func ValidHash(h string) error {
	if !hashRegex.MatchString(h) {
		return fmt.Errorf("%w: sha256 %q", ErrInvalid, h)
	}
	return nil
}

// QuantTag returns the quantisation tag of a GGUF file name in upper case
// ("bge-reranker-v2-m3-Q8_0.gguf" → "Q8_0"), or "".
func QuantTag(file string) string {
	base := strings.TrimSuffix(path.Base(file), ".gguf")
	m := quantRegex.FindStringSubmatch(base)
	if m == nil {
		return ""
	}
	return strings.ToUpper(m[1])
}

// preference is the default choice order of quantisations.
var preference = []string{"Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q5_0", "Q4_K_M", "Q4_K_S", "Q4_0", "F16", "BF16", "FP16", "F32"}

// File is one file of a repo.
type File struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256,omitempty"`
	Quant  string `json:"quant,omitempty"`
}

// GGUFs keeps the .gguf files (no split shards beyond the first part).
func GGUFs(files []File) []File {
	var out []File
	for _, f := range files {
		if strings.HasSuffix(strings.ToLower(f.Path), ".gguf") && ValidFile(f.Path) == nil {
			f.Quant = QuantTag(f.Path)
			out = append(out, f)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return rank(out[i]) < rank(out[j]) || (rank(out[i]) == rank(out[j]) && out[i].Path < out[j].Path)
	})
	return out
}

func rank(f File) int {
	for i, q := range preference {
		if f.Quant == q {
			return i
		}
	}
	return len(preference)
}

// Pick chooses a file: by exact path, by quantisation tag, or the default
// order Q8_0, Q6_K, Q5_K_M, Q5_K_S, Q5_0, Q4_K_M, Q4_K_S, Q4_0, then
// F16/BF16/FP16, then F32.
func Pick(files []File, path, quant string) (File, error) {
	ggufs := GGUFs(files)
	if len(ggufs) == 0 {
		return File{}, ErrNoGGUF
	}
	switch {
	case path != "":
		for _, f := range ggufs {
			if f.Path == path {
				return f, nil
			}
		}
		return File{}, fmt.Errorf("the repo has no file %q", path)
	case quant != "":
		for _, f := range ggufs {
			if strings.EqualFold(f.Quant, quant) {
				return f, nil
			}
		}
		return File{}, fmt.Errorf("the repo has no %s file", strings.ToUpper(quant))
	}
	if rank(ggufs[0]) == len(preference) && len(ggufs) > 1 {
		return File{}, fmt.Errorf("cannot choose among %d GGUF files without a known quantisation tag; name one", len(ggufs))
	}
	return ggufs[0], nil
}

// Source names a hub.
type Source string

// Sources.
const (
	HuggingFace Source = "huggingface"
	ModelScope  Source = "modelscope"
	Local       Source = "local"
)

// Spec is what `--model X` names when X is not a local file:
// [hf:|modelscope:]owner/name[:QUANT] or owner/name/file.gguf.
type Spec struct {
	Source   Source
	Repo     string
	File     string
	Quant    string
	Revision string
}

// DefaultRevision is the branch a repo is read at when none is given:
// ModelScope's default branch is master, Hugging Face's main.
func DefaultRevision(s Source) string {
	if s == ModelScope {
		return "master"
	}
	return "main"
}

// IsLocalSpec says whether a --model value names a local file rather than a
// hub repo: an existing file, a path starting with /, ./ or ../, or a name
// ending in .gguf that has no hub prefix (hf:, ms:) and is not
// owner/name/file.gguf.
func IsLocalSpec(x string) bool {
	if st, err := os.Stat(x); err == nil && !st.IsDir() {
		return true
	}
	if strings.HasPrefix(x, "/") || strings.HasPrefix(x, "./") || strings.HasPrefix(x, "../") {
		return true
	}
	return strings.HasSuffix(strings.ToLower(x), ".gguf") && !strings.Contains(x, ":") && strings.Count(x, "/") != 2
}

// ParseSpec reads a hub model spec.
func ParseSpec(s string) (Spec, error) {
	sp := Spec{Source: HuggingFace, Revision: DefaultRevision(HuggingFace)}
	switch {
	case strings.HasPrefix(s, "hf:"):
		s = strings.TrimPrefix(s, "hf:")
	case strings.HasPrefix(s, "huggingface:"):
		s = strings.TrimPrefix(s, "huggingface:")
	case strings.HasPrefix(s, "modelscope:"):
		s, sp.Source, sp.Revision = strings.TrimPrefix(s, "modelscope:"), ModelScope, DefaultRevision(ModelScope)
	case strings.HasPrefix(s, "ms:"):
		s, sp.Source, sp.Revision = strings.TrimPrefix(s, "ms:"), ModelScope, DefaultRevision(ModelScope)
	}
	if i := strings.LastIndex(s, ":"); i > 0 && !strings.Contains(s[i:], "/") {
		s, sp.Quant = s[:i], s[i+1:]
	}
	parts := strings.SplitN(s, "/", 3)
	if len(parts) < 2 {
		return Spec{}, fmt.Errorf("%w: %q is neither a GGUF file nor a hub repo (owner/name)", ErrInvalid, s)
	}
	sp.Repo = parts[0] + "/" + parts[1]
	if len(parts) == 3 {
		sp.File = parts[2]
		if err := ValidFile(sp.File); err != nil {
			return Spec{}, err
		}
	}
	if err := ValidRepo(sp.Repo); err != nil {
		return Spec{}, err
	}
	if sp.Quant != "" && !regexp.MustCompile(`^[A-Za-z0-9_]{1,16}$`).MatchString(sp.Quant) {
		return Spec{}, fmt.Errorf("%w: quantisation %q", ErrInvalid, sp.Quant)
	}
	return sp, nil
}

// ServedName is the repo name without a -GGUF suffix.
func (s Spec) ServedName() string {
	name := s.Repo[strings.Index(s.Repo, "/")+1:]
	for _, suf := range []string{"-GGUF", "-gguf", "_GGUF", "_gguf", ".GGUF"} {
		name = strings.TrimSuffix(name, suf)
	}
	return name
}
