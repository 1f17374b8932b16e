// Package cputarget tells whether this CPU can run a binary whose llama.cpp
// was compiled for a portable target (`build.sh portable TARGET`), so that a
// container image built for AVX-512 says so on an older CPU instead of
// dying of SIGILL inside ggml.
package cputarget

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"

	"golang.org/x/sys/cpu"
)

// Native is the target of a GGML_NATIVE build: the build machine's CPU.
const Native = "native"

// ErrUnsupported: this CPU lacks an instruction set extension the build uses.
var ErrUnsupported = errors.New("this CPU cannot run this build")

var (
	v3 = []string{"sse4.2", "avx", "avx2", "fma", "f16c", "bmi1", "bmi2"}
	v4 = append(slices.Clip(v3), "avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw")
	// targets are the extensions each target's build uses: what
	// build.sh's portable_options passes to the compiler.
	targets = map[string][]string{
		"x86-64-v3":      v3,
		"x86-64-v4":      v4,
		"sapphirerapids": append(slices.Clip(v4), "avx512vbmi", "avx512vnni", "avx512bf16", "avxvnni", "amx-tile", "amx-int8", "amx-bf16"),
	}
)

// Host reports the extensions of this CPU that the targets name.
func Host() map[string]bool {
	x := cpu.X86
	return map[string]bool{
		"sse4.2": x.HasSSE42, "avx": x.HasAVX, "avx2": x.HasAVX2, "fma": x.HasFMA, "f16c": x.HasF16C,
		"bmi1": x.HasBMI1, "bmi2": x.HasBMI2,
		"avx512f": x.HasAVX512F, "avx512cd": x.HasAVX512CD, "avx512vl": x.HasAVX512VL, "avx512dq": x.HasAVX512DQ, "avx512bw": x.HasAVX512BW,
		"avx512vbmi": x.HasAVX512VBMI, "avx512vnni": x.HasAVX512VNNI, "avx512bf16": x.HasAVX512BF16, "avxvnni": x.HasAVXVNNI,
		"amx-tile": x.HasAMXTile, "amx-int8": x.HasAMXInt8, "amx-bf16": x.HasAMXBF16,
	}
}

// Missing lists what target uses that have lacks; a native build needs no
// check.
func Missing(target string, have map[string]bool) ([]string, error) {
	if target == Native || target == "" {
		return nil, nil
	}
	need, ok := targets[target]
	if !ok {
		return nil, fmt.Errorf("unknown CPU target %q", target)
	}
	var missing []string
	for _, f := range need {
		if !have[f] {
			missing = append(missing, f)
		}
	}
	return missing, nil
}

// Check says whether this CPU runs a build for target.
func Check(target string) error {
	if target != Native && target != "" && runtime.GOARCH != "amd64" {
		return fmt.Errorf("%w: built for the x86-64 target %s, running on %s", ErrUnsupported, target, runtime.GOARCH)
	}
	missing, err := Missing(target, Host())
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: its llama.cpp was built for %s, and this CPU lacks %s; use a build for x86-64-v3 "+
			"(docker build --build-arg AIMIND_CPU=x86-64-v3, or ./build.sh portable x86-64-v3) or build here with ./build.sh",
			ErrUnsupported, target, strings.Join(missing, ", "))
	}
	return nil
}
