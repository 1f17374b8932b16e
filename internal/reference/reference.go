// Package reference is an independent float64 forward pass of a BERT/XLM-R
// cross-encoder reranker, written from the model definition (post-LN BERT
// encoder, tanh GELU, classification head on the first token) rather than
// from llama.cpp. Tests score token ids with it and compare aimind's scores.
// It reads F32 GGUFs (F16 and Q8_0 weights too, dequantized) and is slow on
// purpose: clarity over speed.
package reference

import (
	"fmt"
	"math"
	"os"

	gguf "github.com/gpustack/gguf-parser-go"
)

type layer struct {
	q, k, v, o, up, down                     []float64
	qb, kb, vb, ob, upb, downb               []float64
	attnNormW, attnNormB, outNormW, outNormB []float64
}

// Model holds the weights of a reranker in float64.
type Model struct {
	E, F, H, V, P int
	Eps           float64
	tok, typ, pos []float64
	embNormW      []float64
	embNormB      []float64
	layers        []layer
	cls, clsB     []float64
	out, outB     []float64
}

// Load reads an F32 reranker GGUF.
func Load(path string) (*Model, error) {
	f, err := gguf.ParseGGUFFile(path)
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	arch := "bert"
	if v, ok := f.Header.MetadataKV.Get("general.architecture"); ok {
		arch = v.ValueString()
	}
	u32 := func(k string) int {
		v, ok := f.Header.MetadataKV.Get(arch + "." + k)
		if !ok {
			return 0
		}
		return int(gguf.ValueNumeric[uint64](v))
	}
	m := &Model{E: u32("embedding_length"), F: u32("feed_forward_length"), H: u32("attention.head_count"), Eps: 1e-12}
	if v, ok := f.Header.MetadataKV.Get(arch + ".attention.layer_norm_epsilon"); ok {
		m.Eps = float64(v.ValueFloat32())
	}
	get := tensorReader(f, raw)
	must := func(name string) []float64 {
		if err != nil {
			return nil
		}
		var d []float64
		d, err = get(name)
		return d
	}
	m.tok = must("token_embd.weight")
	m.typ = must("token_types.weight")
	m.pos = must("position_embd.weight")
	m.embNormW = must("token_embd_norm.weight")
	m.embNormB = must("token_embd_norm.bias")
	for l := 0; ; l++ {
		if _, ok := f.TensorInfos.Get(fmt.Sprintf("blk.%d.attn_q.weight", l)); !ok {
			break
		}
		p := fmt.Sprintf("blk.%d.", l)
		m.layers = append(m.layers, layer{
			q: must(p + "attn_q.weight"), qb: must(p + "attn_q.bias"),
			k: must(p + "attn_k.weight"), kb: must(p + "attn_k.bias"),
			v: must(p + "attn_v.weight"), vb: must(p + "attn_v.bias"),
			o: must(p + "attn_output.weight"), ob: must(p + "attn_output.bias"),
			attnNormW: must(p + "attn_output_norm.weight"), attnNormB: must(p + "attn_output_norm.bias"),
			up: must(p + "ffn_up.weight"), upb: must(p + "ffn_up.bias"),
			down: must(p + "ffn_down.weight"), downb: must(p + "ffn_down.bias"),
			outNormW: must(p + "layer_output_norm.weight"), outNormB: must(p + "layer_output_norm.bias"),
		})
	}
	m.cls = must("cls.weight")
	m.clsB = must("cls.bias")
	m.out = must("cls.output.weight")
	m.outB = must("cls.output.bias")
	if err != nil {
		return nil, err
	}
	m.V = len(m.tok) / m.E
	m.P = len(m.pos) / m.E
	return m, nil
}

// linear computes W x + b for W stored as out rows of in values (ggml's
// [in, out] layout).
func linear(w, b, x []float64, out int) []float64 {
	in := len(x)
	y := make([]float64, out)
	for o := 0; o < out; o++ {
		row := w[o*in : (o+1)*in]
		s := 0.0
		for i, v := range x {
			s += row[i] * v
		}
		if b != nil {
			s += b[o]
		}
		y[o] = s
	}
	return y
}

func (m *Model) layerNorm(x, w, b []float64) {
	mean := 0.0
	for _, v := range x {
		mean += v
	}
	mean /= float64(len(x))
	variance := 0.0
	for _, v := range x {
		variance += (v - mean) * (v - mean)
	}
	variance /= float64(len(x))
	inv := 1 / math.Sqrt(variance+m.Eps)
	for i := range x {
		x[i] = (x[i]-mean)*inv*w[i] + b[i]
	}
}

func gelu(x float64) float64 {
	return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
}

// Score returns the raw relevance logit of one sequence of token ids.
func (m *Model) Score(ids []int32) (float64, error) {
	n := len(ids)
	if n == 0 || n > m.P {
		return 0, fmt.Errorf("reference: %d tokens, model holds 1..%d", n, m.P)
	}
	E := m.E
	x := make([][]float64, n)
	for p, id := range ids {
		if id < 0 || int(id) >= m.V {
			return 0, fmt.Errorf("reference: token %d outside the vocabulary", id)
		}
		v := make([]float64, E)
		for i := range v {
			v[i] = m.tok[int(id)*E+i] + m.typ[i] + m.pos[p*E+i]
		}
		m.layerNorm(v, m.embNormW, m.embNormB)
		x[p] = v
	}
	hd := E / m.H
	scale := 1 / math.Sqrt(float64(hd))
	for _, L := range m.layers {
		q := make([][]float64, n)
		k := make([][]float64, n)
		v := make([][]float64, n)
		for p := range x {
			q[p] = linear(L.q, L.qb, x[p], E)
			k[p] = linear(L.k, L.kb, x[p], E)
			v[p] = linear(L.v, L.vb, x[p], E)
		}
		for p := range x {
			att := make([]float64, E)
			w := make([]float64, n)
			for h := 0; h < m.H; h++ {
				lo, hi := h*hd, (h+1)*hd
				maxv := math.Inf(-1)
				for j := 0; j < n; j++ {
					s := 0.0
					for d := lo; d < hi; d++ {
						s += q[p][d] * k[j][d]
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
					for d := lo; d < hi; d++ {
						att[d] += w[j] / sum * v[j][d]
					}
				}
			}
			o := linear(L.o, L.ob, att, E)
			for i := range o {
				o[i] += x[p][i]
			}
			m.layerNorm(o, L.attnNormW, L.attnNormB)
			up := linear(L.up, L.upb, o, m.F)
			for i := range up {
				up[i] = gelu(up[i])
			}
			down := linear(L.down, L.downb, up, E)
			for i := range down {
				down[i] += o[i]
			}
			m.layerNorm(down, L.outNormW, L.outNormB)
			x[p] = down
		}
		_ = x
	}
	h := linear(m.cls, m.clsB, x[0], E)
	for i := range h {
		h[i] = math.Tanh(h[i])
	}
	out := linear(m.out, m.outB, h, len(m.outB))
	return out[0], nil
}
