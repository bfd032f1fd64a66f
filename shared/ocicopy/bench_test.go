package ocicopy_test

import (
	"context"
	"runtime"
	"runtime/debug"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regflow/regflow/shared/local/ocitest"
	"github.com/regflow/regflow/shared/ocicopy"
)

// peakHeap samples HeapInuse until stop is called and returns the highest value seen.
func peakHeap() (stop func() uint64) {
	done := make(chan struct{})
	var peak uint64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		wg.Wait()
		return peak
	}
}

// BenchmarkCopyMemory copies an image with one 100 MiB layer between two registries running in
// child processes (so only the copier's memory is in this process) and reports the peak heap
// growth during the copy. It fails if the copier held more than 32 MiB: it must stream.
//
//	go test -run '^$' -bench CopyMemory -benchtime 3x ./shared/ocicopy/
func BenchmarkCopyMemory(b *testing.B) {
	const layerSize = 100 << 20
	const limit = 32 << 20
	src := ocitest.RegistryProcess(b)
	ref, err := name.NewTag(src + "/big/app:v1")
	if err != nil {
		b.Fatal(err)
	}
	img, err := ocitest.RandomImage(31, v1.Platform{OS: "linux", Architecture: "amd64"}, 1, layerSize)
	if err != nil {
		b.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		b.Fatal(err)
	}
	img = nil
	b.SetBytes(layerSize)
	b.ResetTimer()
	var worst uint64
	for range b.N {
		b.StopTimer()
		dst := ocitest.RegistryProcess(b)
		runtime.GC()
		debug.FreeOSMemory()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		base := ms.HeapInuse
		stop := peakHeap()
		b.StartTimer()
		res, err := ocicopy.Copy(context.Background(), ref.String(), dst+"/big/app")
		b.StopTimer()
		peak := stop()
		if err != nil {
			b.Fatal(err)
		}
		if res.BytesMoved < layerSize {
			b.Fatalf("moved %d bytes, want at least %d", res.BytesMoved, layerSize)
		}
		if peak > base {
			worst = max(worst, peak-base)
		}
	}
	b.ReportMetric(float64(worst)/(1<<20), "peak-heap-MiB")
	if worst > limit {
		b.Errorf("heap grew by %.1f MiB while copying a %d MiB layer: the copy buffers instead of streaming",
			float64(worst)/(1<<20), layerSize>>20)
	}
}
