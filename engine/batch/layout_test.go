package batch

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// fakeTokenizer maps "<s>" and "</s>" to 0 and 2 and every other rune to 100+rune.
type fakeTokenizer struct{}

func (fakeTokenizer) Tokenize(text string, parseSpecial bool) ([]int32, error) {
	var out []int32
	for text != "" {
		switch {
		case parseSpecial && strings.HasPrefix(text, "<s>"):
			out, text = append(out, 0), text[3:]
		case parseSpecial && strings.HasPrefix(text, "</s>"):
			out, text = append(out, 2), text[4:]
		default:
			out, text = append(out, 100+int32(text[0])), text[1:]
		}
	}
	return out, nil
}

func TestLayoutPair(t *testing.T) {
	roberta, _ := NewSpecialLayout(LayoutRoBERTa, 0, 2)
	bert, _ := NewSpecialLayout(LayoutBERT, 101, 102)
	tmpl, err := NewTemplateLayout("<s>{query}</s><s>{document}</s>", fakeTokenizer{})
	if err != nil {
		t.Fatal(err)
	}
	docFirst, err := NewTemplateLayout("d:{document} q:{query}", fakeTokenizer{})
	if err != nil {
		t.Fatal(err)
	}
	q, d := []int32{7, 8}, []int32{9, 10, 11}
	cases := []struct {
		name   string
		layout Layout
		maxLen int
		want   []int32
		err    error
	}{
		{"roberta", roberta, 512, []int32{0, 7, 8, 2, 2, 9, 10, 11, 2}, nil},
		{"bert", bert, 512, []int32{101, 7, 8, 102, 9, 10, 11, 102}, nil},
		{"template", tmpl, 512, []int32{0, 7, 8, 2, 0, 9, 10, 11, 2}, nil},
		{"template with document first", docFirst, 512,
			[]int32{100 + 'd', 100 + ':', 9, 10, 11, 100 + ' ', 100 + 'q', 100 + ':', 7, 8}, nil},
		{"bert exact fit", bert, 8, []int32{101, 7, 8, 102, 9, 10, 11, 102}, nil},
		// Cutting is Prepare's job (TestTruncation): Pair refuses.
		{"document longer than the room", roberta, 7, nil, errDocTooLong},
		{"query alone too long", roberta, 5, nil, ErrQueryTooLong},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.layout.Pair(q, d, tc.maxLen)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestTemplateLayoutRejectsBadTemplates(t *testing.T) {
	for _, tmpl := range []string{"{query}", "{document}", "{query}{query}{document}", ""} {
		if _, err := NewTemplateLayout(tmpl, fakeTokenizer{}); err == nil {
			t.Errorf("template %q accepted", tmpl)
		}
	}
	if _, err := NewSpecialLayout(LayoutRoBERTa, -1, 2); err == nil {
		t.Error("layout without BOS accepted")
	}
}
