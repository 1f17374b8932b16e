// Memory: the check before a load against the free memory or
// --memory-budget; the estimate itself is engine.Plan's.

package models

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/aimind/aimind/engine"
	"github.com/aimind/aimind/llama"
	"github.com/aimind/aimind/modelfile"
)

// checkMemory: inUse is what loaded models take, loading what loads in
// progress have reserved (not yet taken from the system).
func (m *Manager) checkMemory(est, inUse, loading int64) error {
	if m.MemoryBudget > 0 {
		if free := m.MemoryBudget - inUse - loading; est > free {
			return fmt.Errorf("%w: it needs about %d MiB, %d MiB of the --memory-budget of %d MiB is free",
				ErrNoMemory, est>>20, max(free, 0)>>20, m.MemoryBudget>>20)
		}
		return nil
	}
	free, err := m.FreeMemory()
	if err != nil {
		return nil // cannot tell: let llama.cpp try
	}
	if free -= loading; est > free {
		return fmt.Errorf("%w: it needs about %d MiB, %d MiB are available (%d MiB set aside for models loading now)", ErrNoMemory, est>>20, max(free, 0)>>20, loading>>20)
	}
	return nil
}

// Estimate is the memory a model takes once loaded (engine.Plan's
// estimate on this CPU).
func Estimate(f *modelfile.Facts, o engine.Options) int64 { return engine.PlanFor(f, o).Memory }

// EstimateFile is the memory a file of this type and size will take once
// loaded with the manager's options, before its shape is known (the deploy
// dialog shows it). It counts the BF16 copy where this CPU computes the
// file as BF16.
func (m *Manager) EstimateFile(fileType string, size int64) int64 {
	if fileType == "FP16" {
		fileType = "F16"
	}
	return engine.NewPlan(engine.Shape{FileType: fileType, SizeBytes: size}, m.opts, llama.CPU()).Memory
}

// EstimateShaped is EstimateFile for a file whose shape the first bytes of
// one of its repo's files gave (modelfile.ReadHeaderShape): the working
// memory and a decoder's key/value cache come from the shape instead of an
// allowance. The files of one repo are one model in several types, so one
// header serves them all.
func (m *Manager) EstimateShaped(h modelfile.HeaderShape, fileType string, size int64) int64 {
	if fileType == "FP16" {
		fileType = "F16"
	}
	return engine.NewPlan(engine.ShapeFrom(h, fileType, size), m.opts, llama.CPU()).Memory
}

func memAvailable() (int64, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "MemAvailable:") {
			var kb int64
			fmt.Sscanf(strings.TrimPrefix(line, "MemAvailable:"), "%d", &kb)
			return kb << 10, nil
		}
	}
	return 0, errors.New("no MemAvailable in /proc/meminfo")
}
