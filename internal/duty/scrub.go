package duty

import (
	"context"
	"log/slog"
	"time"

	"github.com/assetd/assetd/internal/alive"
)

// Verifier is what the scrubber needs of the manager.
type Verifier interface {
	// Cached lists the cached avatars with their sizes in bytes.
	Cached() map[string]int64
	// Verify re-hashes an avatar's files at rest; damage is handled (marked,
	// announced, healed) by the verifier itself.
	Verify(ctx context.Context, id string) error
}

// DefaultScrubBytesPerSecond caps the scrub's disk reads on average, so
// that a scrub never competes with the apps on the device.
const DefaultScrubBytesPerSecond = 32 << 20

// Scrubber re-hashes every cached avatar every Interval.
type Scrubber struct {
	Verifier       Verifier
	Interval       time.Duration // <= 0: never
	BytesPerSecond int64         // <= 0: DefaultScrubBytesPerSecond
	Log            *slog.Logger
	// Alive beats while Run turns: between avatars and while it waits (the
	// daemon's watchdog); nil = none.
	Alive *alive.Loop
}

// Run scrubs every Interval until ctx ends. The first scrub starts one
// Interval after Run: a restart does not re-read the whole cache.
func (s *Scrubber) Run(ctx context.Context) error {
	if s.Interval <= 0 {
		s.Alive.Stop() // nothing to monitor
		<-ctx.Done()
		return nil
	}
	t := time.NewTimer(s.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.Alive.C():
			s.Alive.Beat()
			continue
		case <-t.C:
		}
		s.scrubOnce(ctx)
		s.Alive.Beat()
		t.Reset(s.Interval)
	}
}

// scrubOnce verifies every cached avatar, pacing itself so that its reads
// average at most BytesPerSecond.
func (s *Scrubber) scrubOnce(ctx context.Context) {
	rate := s.BytesPerSecond
	if rate <= 0 {
		rate = DefaultScrubBytesPerSecond
	}
	log := s.Log
	if log == nil {
		log = slog.Default()
	}
	start := time.Now()
	var bytes int64
	checked := 0
	for id, size := range s.Verifier.Cached() {
		if err := s.Verifier.Verify(ctx, id); err != nil && ctx.Err() == nil {
			log.Warn("scrub: verify failed", "avatarId", id, "err", err)
		}
		checked++
		bytes += size
		s.Alive.Beat()
		// Sleep off whatever the reads so far got ahead of the rate.
		ahead := time.Duration(float64(bytes)/float64(rate)*float64(time.Second)) - time.Since(start)
		if ahead > 0 && !s.sleep(ctx, ahead) {
			return
		}
	}
	log.Info("scrub finished", "avatars", checked, "bytes", bytes, "took", time.Since(start).Round(time.Millisecond))
}

// sleep waits d, beating meanwhile; false when ctx ended first.
func (s *Scrubber) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-s.Alive.C():
			s.Alive.Beat()
		case <-t.C:
			return true
		}
	}
}
