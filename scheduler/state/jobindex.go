package state

import "hash/maphash"

// jobIndex finds a job's record by id: an open-addressing table, linear
// probing, of the records' slots in Machine.recs under a hash of the id.
// It does what a map[string]*record would at fewer cache misses, which is
// what a job's submission, look-up and prune cost at a million jobs: an
// entry is 8 bytes (the id's hash and the slot), a look-up compares the
// id only where the hash matches, and a record keeps its hash, so that
// forgetting a job reads neither its id nor hashes it again. The table is
// no part of the state: a lookup's result does not depend on its layout,
// and nothing walks it. Its hash is seeded per machine (maphash, as Go's
// maps are) because clients choose job ids: ids crafted to collide under a
// fixed hash would turn every probe into a walk of the table. The seed
// changes where an entry lies, never what a command does.
type jobIndex struct {
	seed maphash.Seed
	tab  []ixEntry // len a power of two, at most half full
	n    int
}

// ixEntry is one entry: slot1 is the record's slot plus one, 0 for none.
type ixEntry struct {
	hash  uint32
	slot1 int32
}

func newJobIndex() jobIndex { return jobIndex{seed: maphash.MakeSeed()} }

func (x *jobIndex) hash(id string) uint32 { return uint32(maphash.String(x.seed, id)) }

// get returns the record of id, recs being the machine's slots.
func (x *jobIndex) get(recs []*record, id string) (*record, bool) {
	if x.n == 0 {
		return nil, false
	}
	h := x.hash(id)
	mask := uint32(len(x.tab) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		e := x.tab[i]
		if e.slot1 == 0 {
			return nil, false
		}
		if e.hash == h {
			if r := recs[e.slot1-1]; r.job.ID == id {
				return r, true
			}
		}
	}
}

// warm reads the entry where a look-up of id starts, for Machine.WarmSubmit.
func (x *jobIndex) warm(id string) int64 {
	if len(x.tab) == 0 {
		return 0
	}
	return int64(x.tab[x.hash(id)&uint32(len(x.tab)-1)].slot1)
}

// put adds r, whose id the index does not hold, at its slot; it keeps the
// hash in r.
func (x *jobIndex) put(r *record) {
	if 2*(x.n+1) > len(x.tab) {
		x.grow()
	}
	r.hash = x.hash(r.job.ID)
	x.insert(ixEntry{r.hash, r.slot + 1})
	x.n++
}

func (x *jobIndex) insert(e ixEntry) {
	mask := uint32(len(x.tab) - 1)
	i := e.hash & mask
	for x.tab[i].slot1 != 0 {
		i = (i + 1) & mask
	}
	x.tab[i] = e
}

func (x *jobIndex) grow() {
	old := x.tab
	x.tab = make([]ixEntry, max(64, 2*len(old)))
	for _, e := range old {
		if e.slot1 != 0 {
			x.insert(e)
		}
	}
}

// del forgets r, which the index holds at its slot: the entries after it
// in its run move back into the gap (no tombstones, so look-ups stay as
// short as the table is full).
func (x *jobIndex) del(r *record) {
	mask := uint32(len(x.tab) - 1)
	i := r.hash & mask
	for x.tab[i].slot1 != r.slot+1 {
		i = (i + 1) & mask
	}
	x.n--
	for j := i; ; {
		x.tab[i] = ixEntry{}
		for {
			j = (j + 1) & mask
			e := x.tab[j]
			if e.slot1 == 0 {
				return
			}
			// An entry whose home is cyclically outside (i, j] may fill
			// the gap at i.
			if home := e.hash & mask; (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
				x.tab[i] = e
				i = j
				break
			}
		}
	}
}
