//go:build race

package fleet

// defaultDevices under -race is smaller: 300 devices' goroutines and
// their synchronisation in one bubble once tripped ThreadSanitizer's own
// CHECK (tsan_rtl.cpp:346, the epoch reset of its runtime) in make test.
// 60 devices still make two sites of 30.
const defaultDevices = 60
