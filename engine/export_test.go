package engine

// SetAMXScaleFault makes the next loads corrupt the weights of aimind's AMX
// kernels (every 16th row's int8 scales or BF16 values times f); the
// returned func undoes it. Tests use
// it to prove their error bounds catch a wrong kernel.
func SetAMXScaleFault(f float32) (undo func()) {
	amxScaleFault = f
	return func() { amxScaleFault = 0 }
}
