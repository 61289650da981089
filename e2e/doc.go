// Package e2e tests the real assetd binary end to end: TestMain builds
// ./cmd/assetd once, and each test starts `assetd serve` on its own state
// directory and Unix socket against an httptest origin that speaks the
// origin protocol, then drives the socket API over HTTP as any app would.
//
// The tests never assert speed; every wait is bounded (waitLimit).
package e2e
