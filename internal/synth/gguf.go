package synth

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// GGUF value types (gguf.h).
const (
	typeUint8   = 0
	typeUint32  = 4
	typeInt32   = 5
	typeFloat32 = 6
	typeBool    = 7
	typeString  = 8
	typeArray   = 9
)

// ggml tensor types written here.
const (
	GGMLTypeF32 = 0
	GGMLTypeF16 = 1
)

const alignment = 32

// kv is one metadata entry. Value is one of uint32, int32, float32, bool,
// string, []string, []float32, []int32, []uint8.
type kv struct {
	Key   string
	Value any
}

// tensor is one F32 tensor; Dims are ggml's, innermost first.
type tensor struct {
	Name string
	Dims []uint64
	Data []float32
}

type ggufWriter struct {
	w   *bufio.Writer
	n   int64
	err error
}

func (g *ggufWriter) write(v any) {
	if g.err != nil {
		return
	}
	g.err = binary.Write(g.w, binary.LittleEndian, v)
	g.n += int64(binary.Size(v))
}

func (g *ggufWriter) str(s string) {
	g.write(uint64(len(s)))
	if g.err == nil {
		_, g.err = g.w.WriteString(s)
		g.n += int64(len(s))
	}
}

func (g *ggufWriter) pad() {
	for g.n%alignment != 0 {
		g.write(uint8(0))
	}
}

func (g *ggufWriter) value(v any) {
	switch x := v.(type) {
	case uint32:
		g.write(uint32(typeUint32))
		g.write(x)
	case int32:
		g.write(uint32(typeInt32))
		g.write(x)
	case float32:
		g.write(uint32(typeFloat32))
		g.write(x)
	case bool:
		g.write(uint32(typeBool))
		b := uint8(0)
		if x {
			b = 1
		}
		g.write(b)
	case string:
		g.write(uint32(typeString))
		g.str(x)
	case []string:
		g.write(uint32(typeArray))
		g.write(uint32(typeString))
		g.write(uint64(len(x)))
		for _, s := range x {
			g.str(s)
		}
	case []float32:
		g.write(uint32(typeArray))
		g.write(uint32(typeFloat32))
		g.write(uint64(len(x)))
		g.write(x)
	case []int32:
		g.write(uint32(typeArray))
		g.write(uint32(typeInt32))
		g.write(uint64(len(x)))
		g.write(x)
	case []uint8:
		g.write(uint32(typeArray))
		g.write(uint32(typeUint8))
		g.write(uint64(len(x)))
		g.write(x)
	default:
		g.err = fmt.Errorf("synth: unsupported metadata value %T", v)
	}
}

// writeGGUF writes a GGUF v3 file with F32 (or, with f16, F16) tensors.
type writeOptions struct {
	f16            bool
	halfTokenTypes bool
}

func writeGGUF(w io.Writer, kvs []kv, tensors []tensor, o writeOptions) error {
	half := func(t tensor) bool {
		return (o.f16 && halfable(t)) || (o.halfTokenTypes && t.Name == "token_types.weight")
	}
	g := &ggufWriter{w: bufio.NewWriterSize(w, 1<<20)}
	g.write([]byte("GGUF"))
	g.write(uint32(3))
	g.write(uint64(len(tensors)))
	g.write(uint64(len(kvs)))
	for _, e := range kvs {
		g.str(e.Key)
		g.value(e.Value)
	}
	var off uint64
	for _, t := range tensors {
		g.str(t.Name)
		g.write(uint32(len(t.Dims)))
		n := uint64(1)
		for _, d := range t.Dims {
			g.write(d)
			n *= d
		}
		if n != uint64(len(t.Data)) {
			return fmt.Errorf("synth: tensor %s has %d values for dims %v", t.Name, len(t.Data), t.Dims)
		}
		elem := uint64(4)
		typ := uint32(GGMLTypeF32)
		if half(t) {
			elem, typ = 2, GGMLTypeF16
		}
		g.write(typ)
		g.write(off)
		off += n * elem
		off = (off + alignment - 1) / alignment * alignment
	}
	g.pad()
	for _, t := range tensors {
		if half(t) {
			h := make([]uint16, len(t.Data))
			for i, v := range t.Data {
				h[i] = float32ToHalf(v)
			}
			g.write(h)
		} else {
			g.write(t.Data)
		}
		g.pad()
	}
	if g.err != nil {
		return g.err
	}
	return g.w.Flush()
}

// halfable reports whether a tensor is stored as F16 in an F16 file: matrices
// only. Norms, biases, token types and positions stay F32 as llama.cpp's
// converter writes them (ggml cannot add an F16 row to F32 activations).
func halfable(t tensor) bool {
	return len(t.Dims) > 1 && t.Name != "token_types.weight" && t.Name != "position_embd.weight"
}

// float32ToHalf rounds to nearest even IEEE 754 half precision.
func float32ToHalf(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int((b>>23)&0xff) - 127 + 15
	mant := b & 0x7fffff
	switch {
	case (b>>23)&0xff == 0xff:
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	case exp >= 31:
		return sign | 0x7c00
	case exp <= 0:
		if exp < -10 {
			return sign
		}
		mant |= 0x800000
		shift := uint32(14 - exp)
		half := mant >> shift
		rem := mant & ((1 << shift) - 1)
		mid := uint32(1) << (shift - 1)
		if rem > mid || (rem == mid && half&1 == 1) {
			half++
		}
		return sign | uint16(half)
	}
	half := uint32(exp)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && half&1 == 1) {
		half++
	}
	return sign | uint16(half)
}
