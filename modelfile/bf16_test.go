package modelfile_test

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"

	gguf "github.com/gpustack/gguf-parser-go"

	"github.com/aimind/aimind/internal/synth"
	"github.com/aimind/aimind/modelfile"
)

func TestF16ToBF16(t *testing.T) {
	cases := []struct {
		name string
		f16  uint16
		want uint16
	}{
		{"one", 0x3c00, 0x3f80},
		{"minus two", 0xc000, 0xc000},
		{"zero", 0x0000, 0x0000},
		{"minus zero", 0x8000, 0x8000},
		{"largest half rounds up to 65536", 0x7bff, 0x4780},
		{"infinity", 0x7c00, 0x7f80},
		{"minus infinity", 0xfc00, 0xff80},
		{"smallest subnormal, 2^-24", 0x0001, 0x3380},
		{"largest subnormal rounds up", 0x03ff, 0x3880}, // 0.000060975552 = 0x387FC000 in F32
		{"halfway, even stays", 0x3c04, 0x3f80},         // 1+2^-8: F32 0x3F808000
		{"halfway, odd rounds up", 0x3c0c, 0x3f82},      // 1+3*2^-8: F32 0x3F818000
		{"above halfway rounds up", 0x3c05, 0x3f81},
	}
	for _, tc := range cases {
		if got := modelfile.F16ToBF16(tc.f16); got != tc.want {
			t.Errorf("%s: F16 %#04x gave BF16 %#04x, want %#04x", tc.name, tc.f16, got, tc.want)
		}
	}
	nan := modelfile.F16ToBF16(0x7e00)
	if f := math.Float32frombits(uint32(nan) << 16); !math.IsNaN(float64(f)) {
		t.Errorf("NaN became %#04x", nan)
	}
}

// TestWriteBF16: the copy parses (with gguf-parser-go, not our own walker),
// passes Check as a BF16 file, keeps every 1-D tensor and every byte
// outside the converted matrices, and each converted value is within
// BF16's rounding (half a step of its 7-bit fraction: 2^-8 relative) of the
// F16 original.
func TestWriteBF16(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "f16.gguf")
	s := synth.Tiny()
	s.F16 = true
	if err := synth.Write(src, s); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "derived", "bf16.gguf")
	if err := modelfile.WriteBF16(src, dst, false); err != nil {
		t.Fatal(err)
	}
	facts, err := modelfile.Check(dst)
	if err != nil {
		t.Fatal(err)
	}
	if facts.FileType != "BF16" {
		t.Fatalf("file type %q", facts.FileType)
	}
	a, err := gguf.ParseGGUFFile(src)
	if err != nil {
		t.Fatal(err)
	}
	b, err := gguf.ParseGGUFFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	ra, _ := os.ReadFile(src)
	rb, _ := os.ReadFile(dst)
	if len(ra) != len(rb) || a.TensorDataStartOffset != b.TensorDataStartOffset {
		t.Fatalf("size %d→%d, data at %d→%d", len(ra), len(rb), a.TensorDataStartOffset, b.TensorDataStartOffset)
	}
	converted := 0
	for i, ta := range a.TensorInfos {
		tb := b.TensorInfos[i]
		if ta.Name != tb.Name || ta.Offset != tb.Offset {
			t.Fatalf("tensor %d: %s@%d became %s@%d", i, ta.Name, ta.Offset, tb.Name, tb.Offset)
		}
		start := a.TensorDataStartOffset + int64(ta.Offset)
		n := int64(ta.Elements())
		switch {
		case ta.Type == gguf.GGMLTypeF16 && ta.NDimensions >= 2:
			if tb.Type != gguf.GGMLTypeBF16 {
				t.Fatalf("%s: type %v, want BF16", tb.Name, tb.Type)
			}
			for k := int64(0); k < n; k++ {
				h := binary.LittleEndian.Uint16(ra[start+2*k:])
				bf := binary.LittleEndian.Uint16(rb[start+2*k:])
				want := float64(halfToFloat(h))
				got := float64(math.Float32frombits(uint32(bf) << 16))
				if math.Abs(got-want) > math.Abs(want)*math.Pow(2, -8)+1e-30 {
					t.Fatalf("%s[%d]: F16 %v became BF16 %v", ta.Name, k, want, got)
				}
			}
			converted++
		default:
			if tb.Type != ta.Type {
				t.Fatalf("%s: type %v became %v", ta.Name, ta.Type, tb.Type)
			}
		}
	}
	if converted == 0 {
		t.Fatal("no tensor was converted")
	}
}

// halfToFloat decodes an IEEE half by its definition (value = ±2^(e-15) ×
// 1.f, or 2^-14 × 0.f for subnormals), independently of the code under test.
func halfToFloat(h uint16) float32 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	e := int(h>>10) & 0x1f
	f := float64(h & 0x3ff)
	switch e {
	case 0:
		return float32(sign * math.Ldexp(f/1024, -14))
	case 31:
		if f != 0 {
			return float32(math.NaN())
		}
		return float32(math.Inf(int(sign)))
	}
	return float32(sign * math.Ldexp(1+f/1024, e-15))
}
