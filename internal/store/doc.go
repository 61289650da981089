// Package store is assetd's content-addressed avatar cache on disk.
package store
