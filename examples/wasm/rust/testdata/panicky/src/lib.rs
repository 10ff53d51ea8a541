//! panicky: knots that panic, to check what a panic looks like through the
//! host (rust_test.go). With panic = "abort" a panic cannot become an err
//! response: the PDK logs the message at level error, naming the knot, and
//! the module traps, which the host reports as an err of type Trap.

pirn_pdk::knots! {
    name = "panicky";

    /// Panics with message.
    fn panics(
        /// the panic message
        message: String,
    ) -> () {
        panic!("{}", message)
    }

    /// Returns xs[i]: an index out of range panics, as a bug would.
    fn index(
        /// the list
        xs: Vec<i64>,
        /// the index
        i: usize,
    ) -> i64 {
        xs[i]
    }
}
