package cputarget_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/aimind/aimind/internal/cputarget"
)

func TestMissing(t *testing.T) {
	haswell := map[string]bool{"sse4.2": true, "avx": true, "avx2": true, "fma": true, "f16c": true, "bmi1": true, "bmi2": true}
	zen4 := map[string]bool{"avx512f": true, "avx512cd": true, "avx512vl": true, "avx512dq": true, "avx512bw": true,
		"avx512vbmi": true, "avx512vnni": true, "avx512bf16": true}
	for k := range haswell {
		zen4[k] = true
	}
	cases := []struct {
		target string
		have   map[string]bool
		want   []string
	}{
		{"native", nil, nil},
		{"x86-64-v3", haswell, nil},
		{"x86-64-v3", map[string]bool{"sse4.2": true, "avx": true}, []string{"avx2", "fma", "f16c", "bmi1", "bmi2"}},
		{"x86-64-v4", haswell, []string{"avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw"}},
		{"x86-64-v4", zen4, nil},
		{"sapphirerapids", zen4, []string{"avxvnni", "amx-tile", "amx-int8", "amx-bf16"}},
	}
	for _, c := range cases {
		got, err := cputarget.Missing(c.target, c.have)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("Missing(%s) = %v, %v; want %v", c.target, got, err, c.want)
		}
	}
	if _, err := cputarget.Missing("pentium", nil); err == nil {
		t.Error("an unknown target was accepted")
	}
}

func TestCheck(t *testing.T) {
	if err := cputarget.Check(cputarget.Native); err != nil {
		t.Fatalf("native: %v", err)
	}
	// This machine against the strictest target: the answer must agree
	// with what Host reports.
	missing, _ := cputarget.Missing("sapphirerapids", cputarget.Host())
	err := cputarget.Check("sapphirerapids")
	if (len(missing) > 0) != errors.Is(err, cputarget.ErrUnsupported) {
		t.Fatalf("Check = %v with missing %v", err, missing)
	}
}
