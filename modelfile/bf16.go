package modelfile

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
)

// GGUF tensor type ids (ggml.h).
const (
	ggmlTypeF32  = 0
	ggmlTypeF16  = 1
	ggmlTypeQ8_0 = 8
	ggmlTypeBF16 = 30
)

// F16ToBF16 converts one IEEE half-precision value to bfloat16, rounding to
// nearest even (every F16 value is exact in F32, so this is one rounding).
func F16ToBF16(h uint16) uint16 {
	return f32ToBF16(f16ToF32(h))
}

func f16ToF32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // inf or NaN
		return math.Float32frombits(sign | 0x7f800000 | frac<<13)
	case exp == 0 && frac == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: normalise
		e := uint32(127 - 15 + 1)
		for frac&0x400 == 0 {
			frac <<= 1
			e--
		}
		return math.Float32frombits(sign | e<<23 | (frac&0x3ff)<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | frac<<13)
}

func f32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 { // NaN: keep it a (quiet) NaN
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// WriteBF16 writes a copy of the GGUF at src to dst in which every F16
// tensor of two or more dimensions (the weight matrices and embeddings) is
// BF16 instead, and with q8 every Q8_0 one too (dequantized exactly, then
// rounded once: twice the bytes). ggml's CPU backend multiplies BF16
// matrices with AVX512-BF16 dot products where the CPU has them, faster than
// its F16 and Q8_0 paths. Files holding other tensor types are refused. The
// file is written beside dst and renamed into place, so dst is whole or
// absent. src must have passed Check.
func WriteBF16(src, dst string, q8 bool) (err error) {
	fail := func(err error) error { return fmt.Errorf("cannot convert %q to BF16: %w", src, err) }
	in, err := os.Open(src)
	if err != nil {
		return fail(err)
	}
	defer in.Close()
	tensors, dataStart, align, err := tensorLayout(in)
	if err != nil {
		return fail(err)
	}
	header := make([]byte, dataStart)
	if _, err := in.ReadAt(header, 0); err != nil {
		return fail(err)
	}
	// New types and offsets, in the order the data lies in the file.
	order := make([]int, len(tensors))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return tensors[order[a]].offset < tensors[order[b]].offset })
	newOff := make([]int64, len(tensors))
	convert := make([]bool, len(tensors))
	next, converted := int64(0), 0
	for _, i := range order {
		t := tensors[i]
		size, ok := t.bytes()
		if !ok {
			return fail(fmt.Errorf("tensor type %d is not F32, F16, BF16 or Q8_0", t.typ))
		}
		if t.dims >= 2 && (t.typ == ggmlTypeF16 || q8 && t.typ == ggmlTypeQ8_0) {
			convert[i], size = true, 2*t.elems
			converted++
			binary.LittleEndian.PutUint32(header[t.typeAt:], ggmlTypeBF16)
		}
		newOff[i] = next
		binary.LittleEndian.PutUint64(header[t.typeAt+4:], uint64(next))
		next = (next + size + align - 1) / align * align
	}
	if converted == 0 {
		return fail(errors.New("no F16 (or Q8_0) matrix to convert"))
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fail(err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".bf16-*.gguf")
	if err != nil {
		return fail(err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.WriteAt(header, 0); err != nil {
		return fail(err)
	}
	for i, t := range tensors {
		size, _ := t.bytes()
		data := make([]byte, size)
		if _, err := in.ReadAt(data, dataStart+t.offset); err != nil {
			return fail(fmt.Errorf("tensor data: %w", err))
		}
		if convert[i] {
			data = toBF16(t.typ, data, t.elems)
		}
		if _, err := tmp.WriteAt(data, dataStart+newOff[i]); err != nil {
			return fail(err)
		}
	}
	// The file ends on the alignment, as GGUF writers leave it.
	if err := tmp.Truncate(dataStart + next); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		return fail(err)
	}
	return os.Rename(tmp.Name(), dst)
}

// toBF16 converts n values of an F16 or Q8_0 tensor.
func toBF16(typ uint32, data []byte, n int64) []byte {
	out := make([]byte, 2*n)
	switch typ {
	case ggmlTypeF16:
		for i := int64(0); i < n; i++ {
			binary.LittleEndian.PutUint16(out[2*i:], F16ToBF16(binary.LittleEndian.Uint16(data[2*i:])))
		}
	case ggmlTypeQ8_0:
		for b := int64(0); b < n/32; b++ {
			blk := data[34*b : 34*b+34]
			d := f16ToF32(binary.LittleEndian.Uint16(blk))
			for j := int64(0); j < 32; j++ {
				v := d * float32(int8(blk[2+j]))
				binary.LittleEndian.PutUint16(out[2*(32*b+j):], f32ToBF16(v))
			}
		}
	}
	return out
}

// bytes is the tensor's data size, for the types WriteBF16 handles.
func (t tensorInfo) bytes() (int64, bool) {
	switch t.typ {
	case ggmlTypeF32:
		return 4 * t.elems, true
	case ggmlTypeF16, ggmlTypeBF16:
		return 2 * t.elems, true
	case ggmlTypeQ8_0:
		return t.elems / 32 * 34, t.elems%32 == 0
	}
	return 0, false
}

// tensorInfo is where one tensor's description and data are in a GGUF.
type tensorInfo struct {
	dims   int
	elems  int64
	typ    uint32
	typeAt int64 // file offset of the type field
	offset int64 // data offset from the start of the data section
}

// countingReader tracks the file offset while parsing the header.
type countingReader struct {
	r   *bufio.Reader
	off int64
}

func (c *countingReader) read(n int) ([]byte, error) {
	b := make([]byte, n)
	_, err := io.ReadFull(c.r, b)
	c.off += int64(n)
	return b, err
}

func (c *countingReader) u32() (uint32, error) {
	b, err := c.read(4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (c *countingReader) u64() (uint64, error) {
	b, err := c.read(8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

func (c *countingReader) str() (string, error) {
	n, err := c.u64()
	if err != nil {
		return "", err
	}
	if n > 1<<20 {
		return "", fmt.Errorf("string of %d bytes in the header", n)
	}
	b, err := c.read(int(n))
	return string(b), err
}

// errUnknownType: a metadata value of a type GGUF does not define.
var errUnknownType = errors.New("metadata value of unknown type")

// gguf metadata value sizes by type id; 8 (string) and 9 (array) vary.
var valueSize = map[uint32]int{0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}

func (c *countingReader) skipValue(typ uint32) (uint64, error) {
	switch typ {
	case 8:
		_, err := c.str()
		return 0, err
	case 9:
		et, err := c.u32()
		if err != nil {
			return 0, err
		}
		n, err := c.u64()
		if err != nil {
			return 0, err
		}
		for i := uint64(0); i < n; i++ {
			if _, err := c.skipValue(et); err != nil {
				return 0, err
			}
		}
		return 0, nil
	}
	size, ok := valueSize[typ]
	if !ok {
		return 0, fmt.Errorf("%w %d", errUnknownType, typ)
	}
	b, err := c.read(size)
	if err != nil {
		return 0, err
	}
	var v uint64
	for i := size - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v, nil
}

// tensorLayout reads a GGUF header: each tensor's type, size and data
// offset, and where the data section starts.
func tensorLayout(f *os.File) ([]tensorInfo, int64, int64, error) {
	c := &countingReader{r: bufio.NewReaderSize(f, 1<<16)}
	magic, err := c.u32()
	if err != nil || magic != 0x46554747 { // "GGUF"
		return nil, 0, 0, errors.New("not a GGUF file")
	}
	if _, err := c.u32(); err != nil { // version
		return nil, 0, 0, err
	}
	nTensors, err := c.u64()
	if err != nil {
		return nil, 0, 0, err
	}
	nKV, err := c.u64()
	if err != nil {
		return nil, 0, 0, err
	}
	align := int64(32)
	for i := uint64(0); i < nKV; i++ {
		key, err := c.str()
		if err != nil {
			return nil, 0, 0, err
		}
		typ, err := c.u32()
		if err != nil {
			return nil, 0, 0, err
		}
		v, err := c.skipValue(typ)
		if err != nil {
			return nil, 0, 0, err
		}
		if key == "general.alignment" && v > 0 {
			align = int64(v)
		}
	}
	tensors := make([]tensorInfo, 0, nTensors)
	for i := uint64(0); i < nTensors; i++ {
		if _, err := c.str(); err != nil {
			return nil, 0, 0, err
		}
		nd, err := c.u32()
		if err != nil {
			return nil, 0, 0, err
		}
		t := tensorInfo{dims: int(nd), elems: 1}
		for d := uint32(0); d < nd; d++ {
			n, err := c.u64()
			if err != nil {
				return nil, 0, 0, err
			}
			t.elems *= int64(n)
		}
		t.typeAt = c.off
		if t.typ, err = c.u32(); err != nil {
			return nil, 0, 0, err
		}
		off, err := c.u64()
		if err != nil {
			return nil, 0, 0, err
		}
		t.offset = int64(off)
		tensors = append(tensors, t)
	}
	start := (c.off + align - 1) / align * align
	return tensors, start, align, nil
}
