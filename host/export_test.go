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
