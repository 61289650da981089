package sample

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// Version is the version every sample avatar is written with.
const Version = "2026-11-01.1"

// KiB and MiB size the sample files.
const (
	KiB = 1 << 10
	MiB = 1 << 20
)

// File is one sample file. Files with the same Seed have the same bytes.
type File struct {
	Path string // '/'-separated, relative to the avatar's folder
	Size int    // bytes; ignored for meta.json, whose text is generated
	Seed string // names the byte stream
}

// Avatar is one sample avatar.
type Avatar struct {
	ID    string
	Name  string
	Files []File
}

// sharedIdle is the file that rohan and mei both carry.
var sharedIdle = File{Path: "anim/idle.bin", Size: 512 * KiB, Seed: "shared/anim/idle.bin"}

// Avatars returns the sample set. The slice is new on every call.
func Avatars() []Avatar {
	own := func(id, path string, size int) File {
		return File{Path: path, Size: size, Seed: id + "/" + path}
	}
	mk := func(id, name string, model, talk, texture int, idle File) Avatar {
		return Avatar{ID: id, Name: name, Files: []File{
			own(id, "model.splat", model),
			idle,
			own(id, "anim/talk.bin", talk),
			own(id, "texture.bin", texture),
			{Path: "meta.json"},
		}}
	}
	return []Avatar{
		mk("rohan", "Rohan", 6*MiB, 768*KiB, 1*MiB, sharedIdle),
		mk("mei", "Mei", 5*MiB, 640*KiB, 768*KiB, sharedIdle),
		mk("aria", "Aria", 4*MiB+512*KiB, 512*KiB, 1*MiB+256*KiB, own("aria", "anim/idle.bin", 384*KiB)),
	}
}

// Size is the total size of a's files.
func (a Avatar) Size() int64 {
	var n int64
	for _, f := range a.Files {
		if f.Path == "meta.json" {
			n += int64(len(meta(a)))
		} else {
			n += int64(f.Size)
		}
	}
	return n
}

// Bytes returns the content of file f of avatar a.
func Bytes(a Avatar, f File) []byte {
	if f.Path == "meta.json" {
		return meta(a)
	}
	seed := sha256.Sum256([]byte("assetd-sample-v1/" + f.Seed))
	b := make([]byte, f.Size)
	// ChaCha8.Read never fails.
	_, _ = rand.NewChaCha8(seed).Read(b)
	return b
}

func meta(a Avatar) []byte {
	files := make([]string, 0, len(a.Files))
	for _, f := range a.Files {
		if f.Path != "meta.json" {
			files = append(files, f.Path)
		}
	}
	b, err := json.MarshalIndent(map[string]any{
		"id":          a.ID,
		"name":        a.Name,
		"description": "assetd sample avatar; every byte is generated",
		"version":     Version,
		"files":       files,
	}, "", "  ")
	if err != nil {
		panic(err) // a map of strings always marshals
	}
	return append(b, '\n')
}

// Write writes every sample avatar under dir, one folder per avatar with
// its files and a VERSION file, and returns the set written. Existing
// files are overwritten with the same bytes.
func Write(dir string) ([]Avatar, error) {
	avatars := Avatars()
	for _, a := range avatars {
		base := filepath.Join(dir, a.ID)
		for _, f := range a.Files {
			if err := writeFile(filepath.Join(base, filepath.FromSlash(f.Path)), Bytes(a, f)); err != nil {
				return nil, err
			}
		}
		if err := writeFile(filepath.Join(base, "VERSION"), []byte(Version+"\n")); err != nil {
			return nil, err
		}
	}
	return avatars, nil
}

func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("sample: %w", err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("sample: %w", err)
	}
	return nil
}
