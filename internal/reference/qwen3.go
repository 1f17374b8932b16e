package reference

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"

	gguf "github.com/gpustack/gguf-parser-go"
)

// Qwen3 is an independent float64 forward pass of a Qwen3 reranker, written
// from the model definition (Qwen3ForCausalLM and the Qwen3-Reranker card)
// rather than from llama.cpp: pre-norm decoder blocks with RMSNorm, per-head
// RMSNorm of queries and keys, rotary positions (the two halves of each head
// rotated together, as Hugging Face's rotate_half), causal grouped-query
// attention, SwiGLU, a final RMSNorm, and the "yes"/"no" rows of the
// language-model head read on the last token. The score is the log-odds of
// "yes": logit(yes) - logit(no).
type Qwen3 struct {
	E, F, H, KVH, D, V int
	Eps, Base          float64
	tok                []float64
	outNorm, head      []float64
	layers             []qwen3Layer
}

type qwen3Layer struct {
	attnNorm, q, k, v, o, qNorm, kNorm []float64
	ffnNorm, gate, up, down            []float64
}

// LoadQwen3 reads a Qwen3 reranker GGUF: F32, or F16 and Q8_0 weights
// dequantized to float64 (the error of a quantized file's arithmetic can
// then be told from the error of its stored weights).
func LoadQwen3(path string) (*Qwen3, error) {
	f, err := gguf.ParseGGUFFile(path)
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	num := func(k string) float64 {
		v, ok := f.Header.MetadataKV.Get("qwen3." + k)
		if !ok {
			return 0
		}
		if v.ValueType == gguf.GGUFMetadataValueTypeFloat32 {
			return float64(v.ValueFloat32())
		}
		return float64(gguf.ValueNumeric[uint64](v))
	}
	m := &Qwen3{E: int(num("embedding_length")), F: int(num("feed_forward_length")),
		H: int(num("attention.head_count")), KVH: int(num("attention.head_count_kv")),
		D: int(num("attention.key_length")), Eps: num("attention.layer_norm_rms_epsilon"), Base: num("rope.freq_base")}
	if m.KVH == 0 {
		m.KVH = m.H
	}
	if m.D == 0 && m.H > 0 {
		m.D = m.E / m.H
	}
	if m.Base == 0 {
		m.Base = 10000
	}
	if m.E == 0 || m.H == 0 || m.D == 0 || m.H%m.KVH != 0 {
		return nil, fmt.Errorf("reference: %s is not a Qwen3 model this reference reads", path)
	}
	var firstErr error
	read := tensorReader(f, raw)
	get := func(name string) []float64 {
		if firstErr != nil {
			return nil
		}
		out, err := read(name)
		if err != nil {
			firstErr = err
		}
		return out
	}
	m.tok = get("token_embd.weight")
	m.outNorm = get("output_norm.weight")
	m.head = get("cls.output.weight")
	for l := 0; ; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		if _, ok := f.TensorInfos.Get(p + "attn_q.weight"); !ok {
			break
		}
		m.layers = append(m.layers, qwen3Layer{
			attnNorm: get(p + "attn_norm.weight"),
			q:        get(p + "attn_q.weight"), k: get(p + "attn_k.weight"), v: get(p + "attn_v.weight"),
			o: get(p + "attn_output.weight"), qNorm: get(p + "attn_q_norm.weight"), kNorm: get(p + "attn_k_norm.weight"),
			ffnNorm: get(p + "ffn_norm.weight"), gate: get(p + "ffn_gate.weight"),
			up: get(p + "ffn_up.weight"), down: get(p + "ffn_down.weight"),
		})
	}
	if firstErr != nil {
		return nil, firstErr
	}
	if len(m.head) != 2*m.E {
		return nil, fmt.Errorf("reference: cls.output has %d values, want the 2 rows yes and no of %d", len(m.head), m.E)
	}
	m.V = len(m.tok) / m.E
	return m, nil
}

// rmsNorm returns x / sqrt(mean(x²) + eps) * w.
func (m *Qwen3) rmsNorm(x, w []float64) []float64 {
	ss := 0.0
	for _, v := range x {
		ss += v * v
	}
	inv := 1 / math.Sqrt(ss/float64(len(x))+m.Eps)
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = v * inv * w[i]
	}
	return out
}

// rope rotates one head's vector in place for position pos: element i is
// paired with element i+D/2 at frequency base^(-2i/D).
func (m *Qwen3) rope(x []float64, pos int) {
	half := m.D / 2
	for i := 0; i < half; i++ {
		theta := float64(pos) * math.Pow(m.Base, -2*float64(i)/float64(m.D))
		c, s := math.Cos(theta), math.Sin(theta)
		a, b := x[i], x[i+half]
		x[i], x[i+half] = a*c-b*s, a*s+b*c
	}
}

// Logits returns the "yes" and "no" logits after the last of ids.
func (m *Qwen3) Logits(ids []int32) (yes, no float64, err error) {
	n := len(ids)
	if n == 0 {
		return 0, 0, fmt.Errorf("reference: no tokens")
	}
	E, D := m.E, m.D
	x := make([][]float64, n)
	for p, id := range ids {
		if id < 0 || int(id) >= m.V {
			return 0, 0, fmt.Errorf("reference: token %d outside the vocabulary", id)
		}
		x[p] = append([]float64(nil), m.tok[int(id)*E:(int(id)+1)*E]...)
	}
	group := m.H / m.KVH
	scale := 1 / math.Sqrt(float64(D))
	for _, L := range m.layers {
		q := make([][]float64, n)
		k := make([][]float64, n)
		v := make([][]float64, n)
		for p := range x {
			h := m.rmsNorm(x[p], L.attnNorm)
			q[p] = linear(L.q, nil, h, m.H*D)
			k[p] = linear(L.k, nil, h, m.KVH*D)
			v[p] = linear(L.v, nil, h, m.KVH*D)
			for hh := 0; hh < m.H; hh++ {
				copy(q[p][hh*D:], m.rmsNorm(q[p][hh*D:(hh+1)*D], L.qNorm))
				m.rope(q[p][hh*D:(hh+1)*D], p)
			}
			for hh := 0; hh < m.KVH; hh++ {
				copy(k[p][hh*D:], m.rmsNorm(k[p][hh*D:(hh+1)*D], L.kNorm))
				m.rope(k[p][hh*D:(hh+1)*D], p)
			}
		}
		next := make([][]float64, n)
		for p := range x {
			att := make([]float64, m.H*D)
			w := make([]float64, p+1)
			for hh := 0; hh < m.H; hh++ {
				qh := q[p][hh*D : (hh+1)*D]
				kv := (hh / group) * D
				maxv := math.Inf(-1)
				for j := 0; j <= p; j++ { // causal: keys up to the query's position
					s := 0.0
					for d := 0; d < D; d++ {
						s += qh[d] * k[j][kv+d]
					}
					w[j] = s * scale
					maxv = math.Max(maxv, w[j])
				}
				sum := 0.0
				for j := range w {
					w[j] = math.Exp(w[j] - maxv)
					sum += w[j]
				}
				for j := range w {
					for d := 0; d < D; d++ {
						att[hh*D+d] += w[j] / sum * v[j][kv+d]
					}
				}
			}
			o := linear(L.o, nil, att, E)
			for i := range o {
				o[i] += x[p][i]
			}
			h := m.rmsNorm(o, L.ffnNorm)
			gate := linear(L.gate, nil, h, m.F)
			up := linear(L.up, nil, h, m.F)
			for i := range gate {
				gate[i] = gate[i] / (1 + math.Exp(-gate[i])) * up[i] // SiLU(gate) * up
			}
			down := linear(L.down, nil, gate, E)
			for i := range down {
				down[i] += o[i]
			}
			next[p] = down
		}
		x = next
	}
	h := m.rmsNorm(x[n-1], m.outNorm)
	out := linear(m.head, nil, h, 2)
	return out[0], out[1], nil
}

// Score returns the log-odds of "yes" after ids: logit(yes) - logit(no).
func (m *Qwen3) Score(ids []int32) (float64, error) {
	yes, no, err := m.Logits(ids)
	return yes - no, err
}

// tensorReader returns a reader of f's tensors (F32, F16 or Q8_0) from the
// file's bytes raw, as float64.
func tensorReader(f *gguf.GGUFFile, raw []byte) func(name string) ([]float64, error) {
	return func(name string) ([]float64, error) {
		ti, ok := f.TensorInfos.Get(name)
		if !ok {
			return nil, fmt.Errorf("reference: tensor %s missing", name)
		}
		out, err := decode(raw, uint64(f.TensorDataStartOffset)+ti.Offset, ti.Elements(), ti.Type)
		if err != nil {
			return nil, fmt.Errorf("reference: tensor %s: %w", name, err)
		}
		return out, nil
	}
}

// decode reads n values of a tensor stored as F32, F16 or Q8_0 (blocks of
// 32: an F16 scale and 32 signed bytes) at start of raw.
func decode(raw []byte, start, n uint64, typ gguf.GGMLType) ([]float64, error) {
	var size uint64
	switch typ {
	case gguf.GGMLTypeF32:
		size = 4 * n
	case gguf.GGMLTypeF16:
		size = 2 * n
	case gguf.GGMLTypeQ8_0:
		if n%32 != 0 {
			return nil, fmt.Errorf("%d values are not whole Q8_0 blocks", n)
		}
		size = n / 32 * 34
	default:
		return nil, fmt.Errorf("type %s, want F32, F16 or Q8_0", typ)
	}
	if start+size > uint64(len(raw)) || start+size < start {
		return nil, fmt.Errorf("outside the file")
	}
	b := raw[start : start+size]
	out := make([]float64, n)
	for i := range out {
		switch typ {
		case gguf.GGMLTypeF32:
			out[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])))
		case gguf.GGMLTypeF16:
			out[i] = half(binary.LittleEndian.Uint16(b[2*i:]))
		case gguf.GGMLTypeQ8_0:
			blk := b[i/32*34:]
			out[i] = half(binary.LittleEndian.Uint16(blk)) * float64(int8(blk[2+i%32]))
		}
	}
	return out, nil
}

// half converts IEEE 754 half precision bits.
func half(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1f
	mant := float64(h & 0x3ff)
	switch exp {
	case 0:
		return sign * mant * math.Pow(2, -24)
	case 31:
		if mant == 0 {
			return math.Inf(int(sign))
		}
		return math.NaN()
	}
	return sign * (1 + mant/1024) * math.Pow(2, float64(exp-15))
}
