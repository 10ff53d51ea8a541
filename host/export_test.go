package host

// InstanceMemory returns the linear-memory size of an idle instance of k's
// pool (0 if none is idle).
func InstanceMemory(k *Knot) uint32 {
	select {
	case inst := <-k.pool.Load().idle:
		defer func() { k.pool.Load().idle <- inst }()
		return inst.mem.Size()
	default:
		return 0
	}
}

// Instantiations returns how many instances k's pool has created.
func Instantiations(k *Knot) int64 { return k.pool.Load().created.Load() }

// MemoryMapped reports whether an idle instance of k's pool has its
// linear memory in a mapping of the host's (false if none is idle).
func MemoryMapped(k *Knot) bool {
	select {
	case inst := <-k.pool.Load().idle:
		defer func() { k.pool.Load().idle <- inst }()
		b, ok := inst.mem.Read(0, 1)
		return ok && inst.lin != nil && len(inst.lin.buf) > 0 && &b[0] == &inst.lin.buf[0]
	default:
		return false
	}
}

// ReserveMaps is reserveMaps.
const ReserveMaps = reserveMaps

// SameSignature reports whether a and b share one parsed Signature.
func SameSignature(a, b *Knot) bool { return a.sig == b.sig }
