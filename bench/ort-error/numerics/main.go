// Command numerics prints the error of int8 numerics in one layer's matrix
// product (768 outputs x 3072 inputs, 64 rows, Gaussian weights and
// activations) against float64, relative to ggml's Q8_0 arithmetic (weights
// in Q8_0 blocks of 32 with an FP16 scale, activations quantized per row and
// block of 32): what the fold-free numerics (one scale per weight column and
// one per activation row, as ONNX Runtime's int8 MatMul uses) and the cheaper
// folds would cost, with and without outlier channels in the activations.
//
//	go run ./bench/ort-error/numerics
package main

import (
	"fmt"
	"math"
	"math/rand/v2"
)

const n, k, m = 768, 3072, 64

// quantize rounds each group of g values of every row of a (rows of k) to
// int8 with one scale max|x|/127; fp16 rounds the scale to half precision
// first, as a Q8_0 block stores it.
func quantize(a []float64, g int, fp16 bool) []float64 {
	out := make([]float64, len(a))
	for s := 0; s < len(a); s += g {
		amax := 0.0
		for _, x := range a[s : s+g] {
			amax = math.Max(amax, math.Abs(x))
		}
		d := amax / 127
		if fp16 {
			d = toHalf(d)
		}
		for i, x := range a[s : s+g] {
			if d > 0 {
				out[s+i] = math.Round(x/d) * d
			}
		}
	}
	return out
}

// quantizePow2 quantizes each block of 32 of every row of a (rows of k)
// with the step S*2^(-e/f): S the row's max|x|/127, e the largest integer
// that keeps the block's values within 127 steps (a block's step is its own
// max|x|/127 times 1 to 2^(1/f)).
func quantizePow2(a []float64, f float64) []float64 {
	out := make([]float64, len(a))
	for r := 0; r < len(a); r += k {
		row := a[r : r+k]
		rmax := 0.0
		for _, x := range row {
			rmax = math.Max(rmax, math.Abs(x))
		}
		if rmax == 0 {
			continue
		}
		for s := 0; s < k; s += 32 {
			bmax := 0.0
			for _, x := range row[s : s+32] {
				bmax = math.Max(bmax, math.Abs(x))
			}
			d := rmax / 127
			if bmax > 0 {
				d *= math.Pow(2, -math.Floor(f*math.Log2(rmax/bmax))/f)
			}
			for i, x := range row[s : s+32] {
				out[r+s+i] = math.Round(x/d) * d
			}
		}
	}
	return out
}

// toHalf rounds a positive float to the nearest IEEE half (normal range).
func toHalf(x float64) float64 {
	if x == 0 {
		return 0
	}
	e := math.Floor(math.Log2(x))
	step := math.Pow(2, e-10)
	return math.Round(x/step) * step
}

func rmsError(x, w, ref []float64) float64 {
	sum := 0.0
	for r := 0; r < m; r++ {
		for c := 0; c < n; c++ {
			dot := 0.0
			xr, wc := x[r*k:(r+1)*k], w[c*k:(c+1)*k]
			for i := range xr {
				dot += xr[i] * wc[i]
			}
			d := dot - ref[r*n+c]
			sum += d * d
		}
	}
	return math.Sqrt(sum / (m * n))
}

func report(label string, x, w []float64) {
	ref := make([]float64, m*n)
	for r := 0; r < m; r++ {
		for c := 0; c < n; c++ {
			for i := 0; i < k; i++ {
				ref[r*n+c] += x[r*k+i] * w[c*k+i]
			}
		}
	}
	wq := quantize(w, 32, true)
	base := rmsError(quantize(x, 32, true), wq, ref)
	fmt.Printf("%s: ggml's Q8_0 arithmetic, RMS error %.3e; relative to it:\n", label, base)
	rel := func(name string, xq, wq []float64) {
		fmt.Printf("  %-58s %.2fx\n", name, rmsError(xq, wq, ref)/base)
	}
	rel("activations per row, the file's weight blocks:", quantize(x, k, false), wq)
	rel("activations per block, steps 2^-e under the row's:", quantizePow2(x, 1), wq)
	rel("activations per block, steps 2^(-e/2) under the row's:", quantizePow2(x, 2), wq)
	rel("activations per block, steps 2^(-e/4) under the row's:", quantizePow2(x, 4), wq)
	rel("activations per row, weights per column (from Q8_0):", quantize(x, k, false), quantize(wq, k, false))
	rel("activations per block, weights per column (from Q8_0):", quantize(x, 32, true), quantize(wq, k, false))
	rel("activations per row, weights per column (from F32):", quantize(x, k, false), quantize(w, k, false))
	for _, g := range []int{64, 128} {
		rel(fmt.Sprintf("activations and weights (from Q8_0) in groups of %d:", g), quantize(x, g, false), quantize(wq, g, false))
	}
}

func main() {
	rng := rand.New(rand.NewPCG(1, 2))
	w := make([]float64, n*k)
	for i := range w {
		w[i] = rng.NormFloat64() * 0.02
	}
	x := make([]float64, m*k)
	for i := range x {
		x[i] = rng.NormFloat64()
	}
	report("Gaussian activations", x, w)
	for r := 0; r < m; r++ {
		for _, c := range []int{77, 588, 1200} {
			x[r*k+c] *= 20
		}
	}
	report("three outlier channels x20", x, w)
}
