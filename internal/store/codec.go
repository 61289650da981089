package store

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/assetd/assetd/internal/manifest"
)

// The value of avatars/<id> is a compact binary record rather than JSON:
// Open decodes every record, and this is several times faster. Layout
// (uvarint lengths, varint numbers, digests as 32 raw bytes):
//
//	format (1) | version | manifestURL | etag | source | flags (bit 0 pinned)
//	| state | n × damaged path | fetchedAt ns (0 = zero) | maxAge ns
//	| manifest: schema | avatarId | version | n × (path | size | sha256 | url)
//	| signature? (0 or 1, then keyId | ed25519)
const recordFormat = 1

var errShortRecord = errors.New("truncated avatar record")

func encodeAvatar(a *Avatar) ([]byte, error) {
	b := make([]byte, 0, 128+len(a.Manifest.Assets)*96)
	str := func(s string) { b = binary.AppendUvarint(b, uint64(len(s))); b = append(b, s...) }
	b = append(b, recordFormat)
	str(a.Version)
	str(a.ManifestURL)
	str(a.ETag)
	str(a.Source)
	var flags byte
	if a.Pinned {
		flags |= 1
	}
	b = append(b, flags)
	str(string(a.State))
	b = binary.AppendUvarint(b, uint64(len(a.Damaged)))
	for _, p := range a.Damaged {
		str(p)
	}
	var fetched int64
	if !a.FetchedAt.IsZero() {
		fetched = a.FetchedAt.UnixNano()
	}
	b = binary.AppendVarint(b, fetched)
	b = binary.AppendVarint(b, int64(a.MaxAge))
	m := a.Manifest
	b = binary.AppendVarint(b, int64(m.Schema))
	str(m.AvatarID)
	str(m.Version)
	b = binary.AppendUvarint(b, uint64(len(m.Assets)))
	for _, as := range m.Assets {
		str(as.Path)
		b = binary.AppendVarint(b, as.Size)
		if !manifest.ValidDigest(as.SHA256) {
			return nil, fmt.Errorf("asset %q: bad sha256 %q", as.Path, as.SHA256)
		}
		b, _ = hex.AppendDecode(b, []byte(as.SHA256))
		str(as.URL)
	}
	if m.Signature == nil {
		return append(b, 0), nil
	}
	b = append(b, 1)
	str(m.Signature.KeyID)
	str(m.Signature.Ed25519)
	return b, nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) < 1 {
		d.err = errShortRecord
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if d.err != nil || n <= 0 {
		d.err = errShortRecord
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if d.err != nil || n <= 0 {
		d.err = errShortRecord
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes(n uint64) []byte {
	if d.err != nil || uint64(len(d.b)) < n {
		d.err = errShortRecord
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

// digest reads 32 raw bytes as a hex digest: the string of digests
// (sorted) equal to it, or a new one.
func (d *decoder) digest(digests []string) string {
	raw := d.bytes(32)
	if raw == nil {
		return ""
	}
	var buf [64]byte
	hex.Encode(buf[:], raw)
	lo, hi := 0, len(digests)
	for lo < hi { // comparing with string(buf[:]) allocates nothing
		m := int(uint(lo+hi) >> 1)
		if digests[m] < string(buf[:]) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(digests) && digests[lo] == string(buf[:]) {
		return digests[lo]
	}
	return string(buf[:])
}

func (d *decoder) str() string { return string(d.bytes(d.uvarint())) }

// interner holds strings that recur from record to record (versions,
// sources, states, file paths), so that a load of many records holds
// each once. Its size is bounded by maxInterned.
type interner map[string]string

const maxInterned = 4096

// common reads a string that likely recurs: in's copy when it has one.
func (d *decoder) common(in interner) string {
	b := d.bytes(d.uvarint())
	if s, ok := in[string(b)]; ok {
		return s
	}
	s := string(b)
	if in != nil && len(in) < maxInterned {
		in[s] = s
	}
	return s
}

// count reads a count of items each at least min bytes long, refusing
// counts the record cannot hold.
func (d *decoder) count(min int) int {
	n := d.uvarint()
	if n > uint64(len(d.b)/min) {
		d.err = errShortRecord
		return 0
	}
	return int(n)
}

func decodeAvatar(id string, v []byte) (Avatar, error) { return decodeAvatarIn(id, v, nil, nil) }

// decodeAvatarIn decodes a record whose digests, when found in the sorted
// digests, are those strings: Open shares one string per digest between
// the blob records and every manifest, and allocates none for them. The
// strings that recur between records come from in (nil: none).
func decodeAvatarIn(id string, v []byte, digests []string, in interner) (Avatar, error) {
	d := &decoder{b: v}
	if f := d.byte(); d.err == nil && f != recordFormat {
		return Avatar{}, errors.New("unknown avatar record format")
	}
	a := Avatar{ID: id, Version: d.common(in), ManifestURL: d.str(), ETag: d.str(), Source: d.common(in)}
	a.Pinned = d.byte()&1 != 0
	a.State = State(d.common(in))
	if n := d.count(1); n > 0 {
		a.Damaged = make([]string, n)
		for i := range a.Damaged {
			a.Damaged[i] = d.str()
		}
	}
	if ns := d.varint(); ns != 0 {
		a.FetchedAt = time.Unix(0, ns)
	}
	a.MaxAge = time.Duration(d.varint())
	m := &manifest.Manifest{Schema: int(d.varint())}
	if b := d.bytes(d.uvarint()); string(b) == id {
		m.AvatarID = id // one string, not two
	} else {
		m.AvatarID = string(b)
	}
	m.Version = d.common(in)
	m.Assets = make([]manifest.Asset, d.count(1+1+32+1))
	for i := range m.Assets {
		as := &m.Assets[i]
		as.Path = d.common(in)
		as.Size = d.varint()
		as.SHA256 = d.digest(digests)
		as.URL = d.str()
	}
	if d.byte() == 1 {
		m.Signature = &manifest.Signature{KeyID: d.str(), Ed25519: d.str()}
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = errors.New("avatar record has trailing bytes")
	}
	a.Manifest = m
	return a, d.err
}

// skip reads a string and drops it.
func (d *decoder) skip() { d.bytes(d.uvarint()) }

// decodeEntry decodes of a record only what an entry holds (pinned and
// state), checking the whole record as decodeAvatar does, and appends the
// record's distinct digests (raw) to ds. Open decodes every record so;
// Get decodes a whole one when it is asked for.
func decodeEntry(v []byte, ds [][32]byte) (*entry, [][32]byte, error) {
	d := &decoder{b: v}
	if f := d.byte(); d.err == nil && f != recordFormat {
		return nil, ds, errors.New("unknown avatar record format")
	}
	d.skip() // version
	d.skip() // manifest URL
	d.skip() // etag
	d.skip() // source
	e := &entry{pinned: d.byte()&1 != 0}
	e.state = stateCode(State(d.bytes(d.uvarint())))
	for range d.count(1) { // damaged paths
		d.skip()
	}
	d.varint() // fetchedAt
	d.varint() // maxAge
	d.varint() // schema
	d.skip()   // avatar ID
	d.skip()   // manifest version
	n := d.count(1 + 1 + 32 + 1)
	start := len(ds)
	for range n {
		d.skip() // path
		d.varint()
		raw := d.bytes(32)
		d.skip() // URL
		if d.err != nil {
			break
		}
		dg := [32]byte(raw)
		if n > 16 || !slices.Contains(ds[start:], dg) {
			ds = append(ds, dg)
		}
	}
	if n > 16 { // large manifests: sorting is quicker than a scan per asset
		own := ds[start:]
		slices.SortFunc(own, func(a, b [32]byte) int { return bytes.Compare(a[:], b[:]) })
		ds = ds[:start+len(slices.Compact(own))]
	}
	if d.byte() == 1 {
		d.skip()
		d.skip()
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = errors.New("avatar record has trailing bytes")
	}
	return e, ds, d.err
}

// stateCode is an entry's form of a state: what Stats counts.
func stateCode(st State) uint8 {
	switch st {
	case StateStale:
		return 1
	case StateDamaged:
		return 2
	}
	return 0
}
